"""The public surface: one sorted ``__all__`` per public module, everything documented, nothing
private leaking, and ``import asyncdal`` light (no domain, no CLI, no typer or rich)."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

import asyncdal
from asyncdal import _errors
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Product

PUBLIC_MODULES = [
    "asyncdal",
    "asyncdal.accounts",
    "asyncdal.alembic",
    "asyncdal.commerce",
    "asyncdal.fastapi",
    "asyncdal.otel",
    "asyncdal.social",
    "asyncdal.testing",
    "asyncdal.testing.factories",
    "asyncdal.testing.plugin",
]


def _isort_key(name: str) -> tuple[int, str]:
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_is_sorted_and_unique(name: str) -> None:
    exported = list(_module(name).__all__)
    # ruff's (isort-style) order: CONSTANTS, then Classes, then the rest, each alphabetical.
    assert exported == sorted(set(exported), key=_isort_key)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_matches_public_names(name: str) -> None:
    module = _module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(module.__all__) - {"__version__"}


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_object_is_documented(name: str) -> None:
    module = _module(name)
    assert inspect.getdoc(module), f"{name} has no docstring"
    for attr in module.__all__:
        if attr == "__version__":
            continue
        obj = getattr(module, attr)
        if not callable(obj) or typing.get_origin(obj) is not None:
            # A constant, a ContextVar or a type alias: documented where it is defined.
            continue
        assert inspect.getdoc(obj), f"{name}.{attr} has no docstring"
        if inspect.isclass(obj) and obj.__module__.startswith("asyncdal"):
            for member_name, member in vars(obj).items():
                if member_name.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}.{member_name} has no docstring"


def test_the_layer_exports_the_layer_only() -> None:
    # The database, sessions, repositories, what a service's own models and read models are
    # built from (the mixins, Read, WhereSpec, ReadRepository), and the error tree. A new name
    # here must be part of the layer; the domain and tooling have their own packages.
    # The error classes are one tree (caught as AsyncDALError) and are counted on their own.
    layer = [name for name in asyncdal.__all__ if not name.endswith("Error")]
    assert len(layer) <= 22
    assert len(asyncdal.__all__) - len(layer) <= 22
    for attr in asyncdal.__all__:
        obj = getattr(asyncdal, attr)
        module = getattr(obj, "__module__", "asyncdal")
        assert not module.startswith(("asyncdal.accounts", "asyncdal.social", "asyncdal.commerce"))
        assert not module.startswith(("asyncdal.testing", "asyncdal.cli"))


def test_import_asyncdal_loads_neither_tooling_nor_the_domain() -> None:
    code = (
        "import sys, asyncdal\n"
        "loaded = set(sys.modules)\n"
        "heavy = {'typer', 'rich', 'asyncdal.cli', 'asyncdal.testing', 'asyncdal.accounts',"
        " 'asyncdal.social', 'asyncdal.commerce', 'harness', 'fastapi', 'asyncdal.fastapi'}\n"
        "print(sorted(heavy & loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_command_without_its_extra_says_what_to_install() -> None:
    # Block typer as if the [cli] extra were not installed.
    code = "import sys; sys.modules['typer'] = None; from asyncdal.cli import main; main(['demo'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "asyncdal: the command line needs typer: pip install 'asyncdal[cli]'"
    )


def test_errors_form_one_tree_drawn_in_the_docstring() -> None:
    tree = inspect.getdoc(_errors) or ""
    errors = [getattr(asyncdal, n) for n in asyncdal.__all__ if n.endswith("Error")]
    assert len(errors) > 10
    for cls in errors:
        assert issubclass(cls, asyncdal.AsyncDALError), cls
        assert cls.__name__ in tree, f"{cls.__name__} is missing from the drawn tree"


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("InsufficientStockError", "asyncdal.commerce"),
        ("EmbeddedPostgresError", "asyncdal.testing"),
    ],
)
def test_errors_that_moved_to_their_package_still_import_with_a_warning(
    name: str, home: str
) -> None:
    assert name not in asyncdal.__all__
    with pytest.warns(DeprecationWarning, match=f"moved to {home}.{name}"):
        moved = getattr(asyncdal, name)
    assert moved is getattr(importlib.import_module(home), name)
    assert issubclass(moved, asyncdal.AsyncDALError)
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        asyncdal.NoSuchThing  # noqa: B018


def test_the_domain_builds_on_public_names_a_service_can_use() -> None:
    # What the sample domain subclasses and composes, a service can import from asyncdal too.
    assert issubclass(UserRepository, asyncdal.Repository)
    assert issubclass(asyncdal.Repository, asyncdal.ReadRepository)
    for mixin in (asyncdal.IdMixin, asyncdal.CreatedAtMixin, asyncdal.VersionedMixin):
        assert mixin in User.__mro__ or mixin in Product.__mro__


SOURCE = Path(__file__).resolve().parent.parent
_IMPORT = re.compile(
    r"^\s*(?:from\s+(asyncdal(?:\.\w+)*)\s+import\s+\(?\s*(\w+)|import\s+(asyncdal(?:\.\w+)*))",
    re.M,
)
# White-box tests of internals that have no public face (the error mapper's pieces, the
# backoff curve, URL masking...). Everything a service needs is public; nothing else may
# reach into a private module, and nothing outside tests/ may at all (the examples and the
# docs: test_docs_examples.py, which reads the docs' code blocks).
_WHITE_BOX = {
    # The multi-server harness starts servers the way EmbeddedPostgres does.
    "tests/_cluster.py": {"asyncdal.testing._pg_binaries", "asyncdal.testing._watchdog"},
    "tests/test_cli.py": {"asyncdal._error_mapping"},
    "tests/test_cli_interrupt.py": {"asyncdal.testing._embedded"},
    "tests/test_constraints.py": {"asyncdal._error_mapping"},
    "tests/test_embedded.py": {"asyncdal.testing._embedded"},
    "tests/test_filters_property.py": {"asyncdal._repository.filters"},
    # The conformance suite checks the one place that classifies column types.
    "tests/test_kitchen_sink.py": {"asyncdal._repository.filters", "asyncdal._repository.kinds"},
    "tests/test_migrations.py": {"asyncdal._migrate"},
    "tests/test_pgbouncer.py": {"asyncdal._error_mapping"},
    "tests/test_public_api.py": {"asyncdal._errors"},
    # The bound on a dying read's runs, asserted as the count of runs.
    "tests/test_read_retry.py": {"asyncdal._read_retry"},
    "tests/test_reliability.py": {"asyncdal.testing._pg_binaries"},
    # Which statements count as writes (the classifier has no public face).
    "tests/test_replica_writes.py": {"asyncdal._writes"},
    "tests/test_session_guard.py": {"asyncdal._guard"},
    "tests/test_settings_edges.py": {"asyncdal._config", "asyncdal._urls"},
    "tests/test_stats.py": {"asyncdal._slow_query"},
    "tests/test_tls.py": {"asyncdal.testing._pg_binaries"},
    "tests/test_transaction.py": {"asyncdal._error_mapping", "asyncdal._transaction"},
    "tests/test_transaction_retry.py": {"asyncdal._transaction"},
    # Forged, stale and future-dated tokens are made with the signer itself.
    "tests/test_write_tokens.py": {"asyncdal._write_tokens"},
}


def _is_private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split("."))


def _private_imports(path: Path) -> set[str]:
    """The private asyncdal modules (or names of asyncdal packages) ``path`` imports."""
    found = set()
    for package, name, module in _IMPORT.findall(path.read_text(encoding="utf-8")):
        dotted = module or package
        if _is_private(dotted):
            found.add(dotted)
        elif name and _is_private(name):
            found.add(f"{package}.{name}")
    return found


def test_tests_import_private_modules_only_where_listed() -> None:
    found = {
        str(f.relative_to(SOURCE)): _private_imports(f)
        for f in SOURCE.joinpath("tests").glob("*.py")
    }
    extra = {f: mods - _WHITE_BOX.get(f, set()) for f, mods in found.items()}
    assert {f: mods for f, mods in extra.items() if mods} == {}


def test_domain_packages_import_no_other_package_s_private_modules() -> None:
    package = SOURCE / "src" / "asyncdal"
    domains = ("accounts", "social", "commerce", "fastapi", "testing", "cli")
    for domain in domains:
        for path in package.joinpath(domain).rglob("*.py"):
            for module in _private_imports(path):
                parts = module.split(".")
                own = parts[1] == domain
                layer = parts[1].startswith("_")  # the layer's private modules
                assert own or layer, f"{path.relative_to(SOURCE)} imports {module}"
