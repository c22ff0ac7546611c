"""The public surface: one sorted ``__all__`` per public module, everything documented, nothing
private leaking, and ``import asyncdal`` light (no domain, no CLI, no typer or rich)."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import asyncdal
from asyncdal import _errors

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
        if not callable(obj):  # a constant or a ContextVar: documented where it is defined
            continue
        assert inspect.getdoc(obj), f"{name}.{attr} has no docstring"
        if inspect.isclass(obj) and obj.__module__.startswith("asyncdal"):
            for member_name, member in vars(obj).items():
                if member_name.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr}.{member_name} has no docstring"


def test_the_layer_exports_the_layer_only() -> None:
    # About 30 names: the database, sessions, repositories and the error tree. A new name
    # here must be part of the layer; the domain and tooling have their own packages.
    # The error classes are one tree (caught as AsyncDALError) and are counted on their own.
    layer = [name for name in asyncdal.__all__ if not name.endswith("Error")]
    assert len(layer) <= 16
    assert len(asyncdal.__all__) - len(layer) <= 24
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
