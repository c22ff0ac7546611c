"""The dependency range pyproject.toml declares is what CI installs, at both ends.

CI runs the suite twice: on the newest releases, and on the lowest ones the range admits
(``uv pip install --resolution lowest-direct``, a second Python; see ``.ci/run``, which sets
``ASYNCDAL_DEPENDENCIES=lowest`` for that run). Either way every installed direct dependency
must satisfy its declared range; in the lowest run each must be exactly its declared lower
bound, so a bound nobody tests (or one the resolver cannot reach) fails here.
"""

from __future__ import annotations

import os
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The extras the test environments install (.ci/run: -e '.[dev,examples,bench]').
INSTALLED_EXTRAS = ("dev", "examples", "cli", "fastapi", "testing", "otel", "bench")


def _direct_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in INSTALLED_EXTRAS:
        found += [Requirement(r) for r in project["optional-dependencies"].get(extra, [])]
    return [r for r in found if r.name != "asyncdal"]


def _lower_bound(requirement: Requirement) -> Version:
    bounds = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{requirement}: declare exactly one lower bound (>=)"
    return bounds[0]


REQUIREMENTS = _direct_requirements()


def test_every_direct_dependency_has_one_lower_bound() -> None:
    assert {r.name for r in REQUIREMENTS} >= {"sqlalchemy", "asyncpg", "alembic"}
    for requirement in REQUIREMENTS:
        _lower_bound(requirement)


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.name)
def test_installed_version_is_in_the_declared_range(requirement: Requirement) -> None:
    installed = Version(metadata.version(requirement.name))
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"{requirement.name} {installed} is outside the declared {requirement.specifier}"
    )
    if os.environ.get("ASYNCDAL_DEPENDENCIES") == "lowest":
        assert installed == _lower_bound(requirement), (
            f"the lowest-versions run installed {requirement.name} {installed}, not its declared "
            f"lower bound {_lower_bound(requirement)}: raise the bound to what is tested"
        )
