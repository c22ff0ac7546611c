"""libpq's sslmode against a real server with TLS, using a self-signed certificate made here.

The certificate is made with the ``openssl`` command-line tool (no new dependency); the test
is skipped where it is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from asyncdal import Database, DatabaseUnavailableError
from asyncdal.testing import EmbeddedPostgres
from asyncdal.testing._pg_binaries import server_account

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, Path, Path]]:
    """An embedded server with ssl=on; its URL, its certificate, and an unrelated one."""
    directory = Path(tempfile.mkdtemp(prefix="asyncdal-tls-", dir="/tmp"))
    try:
        cert, key = _self_signed(directory, "server")
        other, _ = _self_signed(directory, "other")
        account = server_account()
        directory.chmod(0o755)
        key.chmod(0o600)  # the server refuses a key others can read
        if account is not None:
            os.chown(key, *account)
        settings = {"ssl": "on", "ssl_cert_file": str(cert), "ssl_key_file": str(key)}
        with EmbeddedPostgres(settings=settings) as pg:
            yield pg.url, cert, other
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _uses_ssl(url: str) -> bool:
    async with Database.from_url(url, pool_size=1, max_overflow=0) as db:
        async with db.session() as s:
            return bool(
                await s.scalar(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
            )


async def test_sslmode_require_encrypts(tls_server: tuple[str, Path, Path]) -> None:
    url, _, _ = tls_server
    assert await _uses_ssl(f"{url}?sslmode=require") is True
    assert await _uses_ssl(f"{url}?sslmode=disable") is False


async def test_sslmode_verify_full_checks_the_certificate(
    tls_server: tuple[str, Path, Path],
) -> None:
    url, cert, other = tls_server
    assert await _uses_ssl(f"{url}?sslmode=verify-full&sslrootcert={cert}") is True
    with pytest.raises(DatabaseUnavailableError):
        await _uses_ssl(f"{url}?sslmode=verify-ca&sslrootcert={other}")
