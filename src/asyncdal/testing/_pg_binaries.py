"""Where PostgreSQL's server binaries are, and which account may run them.

Used by the embedded server; kept apart because it is the part that varies by platform.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
from pathlib import Path

from asyncdal.testing._errors import EmbeddedPostgresError

__all__ = ["SUPERUSER", "find_bin_dir", "server_account"]

SUPERUSER = "postgres"
_REQUIRED = ("initdb", "postgres", "createdb")
_SEARCH_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian/Ubuntu
    "/usr/local/pgsql/bin",  # source build
    "/opt/homebrew/opt/postgresql*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql*/bin",  # Homebrew, Intel
    "/usr/pgsql-*/bin",  # RHEL/Fedora (PGDG)
)
_INSTALL_HINT = (
    "Install PostgreSQL (`apt-get install -y postgresql` on Debian/Ubuntu, `brew install "
    "postgresql` on macOS), point ASYNCDAL_PG_BIN at its bin directory, or set DATABASE_URL "
    "to use an existing server."
)


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _REQUIRED)


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_bin_dir(bin_dir: str | None = None) -> Path:
    """The directory holding ``initdb``/``postgres``/``createdb``.

    Looks at ``bin_dir``, else ``$ASYNCDAL_PG_BIN``, else ``pg_ctl`` on ``PATH``, else the
    newest version in the usual install locations. Raises ``EmbeddedPostgresError`` if none.
    """
    explicit = bin_dir or os.environ.get("ASYNCDAL_PG_BIN")
    if explicit:
        if _has_binaries(Path(explicit).expanduser()):
            return Path(explicit).expanduser()
        source = "bin_dir" if bin_dir else "ASYNCDAL_PG_BIN"
        raise EmbeddedPostgresError(
            f"PostgreSQL server binaries ({', '.join(_REQUIRED)}) not found in "
            f"{source}={explicit!r}. {_INSTALL_HINT}"
        )
    candidates: list[Path] = []
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:  # Homebrew links pg_ctl into bin/: also try the real directory behind the link
        candidates += [Path(pg_ctl).parent, Path(pg_ctl).resolve().parent]
    for pattern in _SEARCH_GLOBS:
        candidates += [Path(p) for p in sorted(glob.glob(pattern), key=_version_key, reverse=True)]
    for candidate in candidates:
        if _has_binaries(candidate):
            return candidate
    raise EmbeddedPostgresError(
        f"No PostgreSQL server binaries found on PATH or in {', '.join(_SEARCH_GLOBS)}. "
        f"{_INSTALL_HINT}"
    )


def server_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as: PostgreSQL refuses to run as root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise EmbeddedPostgresError(
            "Running as root, but PostgreSQL refuses to run as root and there is no 'postgres' "
            "system user to run it as. Create one (`useradd --system postgres`), run as an "
            "ordinary user, or set DATABASE_URL."
        ) from None
    return entry.pw_uid, entry.pw_gid
