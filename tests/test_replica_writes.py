"""With replicas, only a unit of work that wrote records a WAL position.

A read-only ``db.session()`` or ``db.transaction()`` costs one checkout and no
``pg_current_wal_insert_lsn()`` round trip, and leaves the context's reads free to use the
lagging replica at once. Every way of writing counts: an ORM flush, Core DML on the session or
on its connection, ``text()`` DML, a data-modifying ``WITH``, and ``add_many``'s COPY.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text

from asyncdal import DALSession, Database
from asyncdal._writes import writes
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Product, ProductRepository
from tests._cluster import requires_replication

pytestmark = requires_replication


class Primary:
    """Counts checkouts from the primary's pools (a WAL-position query takes one)."""

    def __init__(self, db: Database) -> None:
        self.checkouts = 0
        for engine in (db.engine, db.read_engine):
            event.listen(engine.sync_engine.pool, "checkout", self._checkout)

    def _checkout(self, *args: Any) -> None:
        self.checkouts += 1


_names = iter(range(10**6))


def _user() -> dict[str, str]:
    name = f"w{next(_names)}"
    return {"username": name, "email": f"{name}@example.org"}


async def _reads_only(s: DALSession) -> None:
    await s.scalar(select(User.id).limit(1))
    await s.execute(text("SELECT 1"))
    await s.scalar(select(Product.id).with_for_update().limit(1))  # locks, writes nothing
    await s.execute(text("WITH x AS (SELECT 1 AS a) SELECT a FROM x"))


async def test_read_only_units_of_work_record_nothing_and_cost_one_checkout(
    replica_db: Database,
) -> None:
    primary = Primary(replica_db)

    async def in_session() -> None:
        async with replica_db.session() as s:
            await _reads_only(s)

    for run in (in_session, lambda: replica_db.transaction(_reads_only)):
        before = primary.checkouts
        await run()
        assert primary.checkouts - before == 1  # the unit of work's own, no WAL query
        assert replica_db.write_token() is None


WRITES: dict[str, Callable[[DALSession], Awaitable[Any]]] = {
    "orm flush": lambda s: UserRepository(s).create(**_user()),
    "core insert": lambda s: s.execute(insert(User).values(**_user())),
    "text insert": lambda s: s.execute(
        text("INSERT INTO users (username, email) VALUES (:username, :email)"), _user()
    ),
    "data-modifying with": lambda s: s.execute(
        text(
            "WITH made AS (INSERT INTO users (username, email) VALUES (:username, :email) "
            "RETURNING id) SELECT id FROM made"
        ),
        _user(),
    ),
}


async def _on_connection(s: DALSession) -> None:
    conn = await s.connection()
    await conn.execute(insert(User).values(**_user()))


async def _copy(s: DALSession) -> None:
    rows = [
        {"sku": f"C{next(_names)}", "name": "c", "price": Decimal("1.00"), "stock": 1}
        for _ in range(ProductRepository.copy_threshold)  # add_many's COPY path
    ]
    await ProductRepository(s).add_many(rows)


WRITES["session.connection() insert"] = _on_connection
WRITES["add_many COPY"] = _copy


@pytest.mark.parametrize("how", list(WRITES))
@pytest.mark.parametrize("unit", ["session", "transaction"])
async def test_every_kind_of_write_records_its_position(
    replica_db: Database, how: str, unit: str
) -> None:
    primary = Primary(replica_db)
    write = WRITES[how]
    if unit == "session":
        async with replica_db.session() as s:
            await _reads_only(s)
            await write(s)
    else:

        async def work(s: DALSession) -> None:
            await _reads_only(s)
            await write(s)

        await replica_db.transaction(work)
    token = replica_db.write_token()
    assert token is not None
    assert primary.checkouts == 2  # the unit of work, then the WAL position


def test_statement_classification() -> None:
    for sql in [
        "SELECT 1",
        "  select * from t for update",
        "/* c */ -- x\n SELECT 1",
        "WITH a AS (SELECT 1) SELECT * FROM a FOR UPDATE",
        "WITH a AS (SELECT 1) SELECT * FROM a FOR NO KEY UPDATE",
        "SAVEPOINT sa_1",
        "RELEASE SAVEPOINT sa_1",
        "ROLLBACK TO SAVEPOINT sa_1",
        "SHOW search_path",
    ]:
        assert not writes(sql), sql
    for sql in [
        "INSERT INTO t VALUES (1)",
        "update t set a = 1",
        "DELETE FROM t",
        "MERGE INTO t USING s ON true WHEN MATCHED THEN DO NOTHING",
        "WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a",
        "TRUNCATE t",
        "CREATE TABLE t (a int)",
        "COPY t FROM STDIN",
        "CALL p()",
        "",
        "\x00",
    ]:
        assert writes(sql), sql
