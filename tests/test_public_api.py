"""The public surface: one sorted ``__all__``, everything documented, nothing private leaking."""

from __future__ import annotations

import inspect

import asyncdal
from asyncdal import _errors


def test_all_is_sorted_and_unique() -> None:
    assert list(asyncdal.__all__) == sorted(set(asyncdal.__all__))


def test_all_matches_public_names() -> None:
    public = {
        name
        for name, value in vars(asyncdal).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(asyncdal.__all__) - {"__version__"}


def test_every_public_object_is_documented_and_exported_from_the_package() -> None:
    for name in asyncdal.__all__:
        if name == "__version__":
            continue
        obj = getattr(asyncdal, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_errors_form_one_tree_drawn_in_the_docstring() -> None:
    tree = inspect.getdoc(_errors) or ""
    errors = [getattr(asyncdal, n) for n in asyncdal.__all__ if n.endswith("Error")]
    assert len(errors) > 10
    for cls in errors:
        assert issubclass(cls, asyncdal.AsyncDALError), cls
        assert cls.__name__ in tree, f"{cls.__name__} is missing from the drawn tree"
