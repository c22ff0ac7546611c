"""Signed write tokens: a forged, stale or future-dated token is ignored, never obeyed.

Unsigned, ``w1.<far-future position>`` made every read of a client poll the replicas for
``replica_wait`` and then use the primary, and ``w1.ffff...`` pinned it to the primary. A
token is now signed with the deployment's secret (or a random one per process) and dated:
anything else is ignored, counted, and the read runs as if it had no token, on a replica at
once. Checked on a real replica that applies WAL 300 ms late, with a long ``replica_wait``
(an obeyed forged token would end on the primary).
"""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from asyncdal import ConfigurationError, Database, InvalidTypeError, Settings
from asyncdal._write_tokens import CLOCK_SKEW, MAX_AGE, TokenSigner
from asyncdal.accounts import User
from asyncdal.testing import EmbeddedPostgres
from tests._cluster import Standby, requires_replication
from tests._replicas import fresh

SECRET = "token-secret-5d1e-9a7c-long-enough"
FUTURE = 0xFFFF_FFF0


def forged(signer: TokenSigner) -> dict[str, str]:
    """Tokens a client could send that must all be ignored."""
    valid = signer.sign(FUTURE)
    now = int(time.time())
    return {
        "unsigned future position": f"w1.{FUTURE:x}",
        "unsigned all ones": "w1." + "f" * 16,
        "all ones": "w2." + "f" * 16 + f".{now:x}." + "0" * 32,
        "another secret": TokenSigner("another-secret-of-16+").sign(FUTURE),
        "flipped mac": valid[:-1] + ("0" if valid[-1] != "0" else "1"),
        "moved position": valid.replace(f"w2.{FUTURE:x}.", "w2.fffffffffffffff0.", 1),
        "stale": signer.sign(FUTURE, issued=now - MAX_AGE - 5),
        "future-dated": signer.sign(FUTURE, issued=now + CLOCK_SKEW + 60),
        "garbage": "'; DROP TABLE users; --",
        "NUL": "w2.\x00",
        "empty": "",
        "oversize": valid + "0" * 10_000,
    }


def test_tokens_verify_only_with_their_secret_and_age() -> None:
    signer = TokenSigner(SECRET)
    assert signer.verify(signer.sign(12345)) == 12345
    assert TokenSigner(SECRET).verify(signer.sign(7)) == 7  # another process, same secret
    for name, token in forged(signer).items():
        assert signer.verify(token) is None, name
    # Without a secret each process has its own key: tokens do not cross processes.
    assert TokenSigner(None).verify(TokenSigner(None).sign(7)) is None
    assert SECRET not in repr(signer)


def test_the_secret_is_a_setting_never_shown() -> None:
    settings = Settings.from_env(
        {"DATABASE_URL": "postgresql://h/db", "ASYNCDAL_TOKEN_SECRET": SECRET}
    )
    assert settings.token_secret == SECRET
    assert SECRET not in repr(settings)
    with pytest.raises(ConfigurationError, match="token_secret"):
        Settings.from_url("postgresql://h/db", token_secret="short")
    with pytest.raises(ConfigurationError, match="token_secret"):
        Settings.from_url("postgresql://h/db", token_secret=12345678901234567890)


async def _where(db: Database, after: str | None) -> bool:
    """Whether a read with ``after`` ran on the replica (in a fresh context: another request)."""

    async def read() -> bool:
        async with db.read(after=after) as s:
            return bool(await s.scalar(select(func.pg_is_in_recovery())))

    return await fresh(read())


@requires_replication
async def test_forged_tokens_neither_delay_nor_pin_reads(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    # A 30 s replica_wait: a forged future position that was obeyed would end on the primary.
    async with Database.from_url(
        primary.url, replicas=[replica.url], replica_wait=30, token_secret=SECRET
    ) as db:
        cases = forged(TokenSigner(SECRET))
        for name, token in cases.items():
            assert await _where(db, token), name

            async def adopted(token: str = token) -> bool:
                db.read_after(token)
                assert db.write_token() is None  # nothing of it was adopted
                async with db.read() as s:
                    return bool(await s.scalar(select(func.pg_is_in_recovery())))

            assert await fresh(adopted()), name
            gathered = await db.gather(
                lambda s: s.scalar(select(func.pg_is_in_recovery())), after=token
            )
            assert list(gathered) == [True], name
        assert db.stats().write_tokens_ignored_total == 3 * len(cases)
        with pytest.raises(InvalidTypeError):
            async with db.read(after=12345):  # type: ignore[arg-type]
                pass


@requires_replication
async def test_a_signed_token_carries_a_write_to_another_process(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    options = {"replicas": [replica.url], "replica_wait": 5.0, "token_secret": SECRET}
    async with (
        Database.from_url(primary.url, **options) as writer,
        Database.from_url(primary.url, **options) as reader,
    ):
        for n in range(3):
            name = f"tok{n}"

            async def write(name: str = name) -> str | None:
                async with writer.session() as s:
                    s.add(User(username=name, email=f"{name}@example.org"))
                return writer.write_token()

            token = await fresh(write())
            assert token is not None
            assert token.startswith("w2.")

            async def read(name: str = name, token: str = token) -> tuple[bool, int]:
                async with reader.read(after=token) as s:
                    where = await s.scalar(select(func.pg_is_in_recovery()))
                    found = await s.scalar(select(func.count()).where(User.username == name))
                    return bool(where), int(found or 0)

            assert await fresh(read()) == (True, 1)

            async def only_reads(token: str = token) -> str | None:
                reader.read_after(token)
                async with reader.read() as s:
                    await s.scalar(select(1))
                return reader.write_token()

            # A request that only read hands back the very token it came with (no new cookie).
            assert await fresh(only_reads()) == token
        assert reader.stats().write_tokens_ignored_total == 0


@requires_replication
async def test_replicas_without_a_secret_warn(
    primary: EmbeddedPostgres, replica: Standby, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncdal")
    async with Database.from_url(primary.url, replicas=[replica.url]):
        pass
    assert any("token_secret" in r.getMessage() for r in caplog.records)
    caplog.clear()
    async with Database.from_url(primary.url, replicas=[replica.url], token_secret=SECRET):
        pass
    async with Database.from_url(primary.url):
        pass
    assert not [r for r in caplog.records if "token_secret" in r.getMessage()]
