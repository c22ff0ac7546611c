"""Every column type through every verb: a service's own models on the generic layer.

The kitchen-sink service (``tests/kitchen_sink``) has its own tables and its own Alembic
environment, migrated after asyncdal's into a database of its own. Its ``Gadget`` has one column
of every type a service uses every day (integers, numeric, float, boolean, text, date, time,
timestamps with and without time zone, interval, UUID, JSON, JSONB, arrays, bytes, native and
non-native enums), a type the layer does not know (``INET``) and a user ``TypeDecorator``; its
primary key is a UUID named ``ref``. ``Pairing`` has a composite key.

Values vary through hypothesis where they can; every verb is checked by reading back what the
database holds, on the INSERT and the COPY path of ``add_many``, on a session and on the read
path (``db.read``, ``db.get``, ``db.get_many``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from alembic.config import Config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select
from sqlalchemy.engine import Connection

import asyncdal
from asyncdal import (
    AsyncDALError,
    CheckViolationError,
    Database,
    DuplicateError,
    Filter,
    InvalidQueryError,
    InvalidTypeError,
    NotFoundError,
)
from asyncdal._repository.filters import operators_for
from asyncdal._repository.kinds import kind_of
from asyncdal.testing.plugin import fresh_database
from tests.kitchen_sink.models import Color, Gadget, GadgetRepository, Pairing, PairingRepository

MIGRATIONS = Path(__file__).resolve().parent / "kitchen_sink" / "migrations"


def _migrate(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def kitchen(server_url: str) -> AsyncIterator[Database]:
    """A database of its own: asyncdal's schema, then the kitchen-sink service's."""
    async with fresh_database(server_url, "asyncdal_kitchen") as url:
        if url is None:
            pytest.skip("the test server's role cannot CREATE DATABASE")
        await asyncdal.upgrade(url)
        db = Database.from_url(url, pool_size=4, max_overflow=2)
        async with db.engine.begin() as conn:
            await conn.run_sync(_migrate)
        yield db
        await db.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def clean(kitchen: Database) -> AsyncIterator[Database]:
    """The kitchen database, emptied after the test."""
    yield kitchen
    async with kitchen.session() as s:
        await s.execute(delete(Gadget))
        await s.execute(delete(Pairing))


def gadget(n: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid row; ``n`` varies every value."""
    values: dict[str, Any] = {
        "ref": uuid.UUID(int=n + 1),
        "small": n - 7,
        "count": 1000 * n,
        "big": 2**40 + n,
        "amount": Decimal(n) + Decimal("0.25"),
        "ratio": n / 4,
        "weight": n * 1.5,
        "active": n % 2 == 0,
        "code": f"c{n:04d}",
        "notes": f"note {n}" if n % 3 else None,
        "day": date(2026, 1, 1) + timedelta(days=n),
        "opens": time(n % 24, 30),
        "seen_at": datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(hours=n),
        "local_at": datetime(2026, 1, 1, 12) + timedelta(minutes=n),
        "span": timedelta(seconds=90 * n + 1),
        "doc": {"n": n, "list": [1, "two"]},
        "docb": {"n": n, "nested": {"ok": True}},
        "tags": [f"t{n}", "shared"],
        "blob": bytes([n % 256, 0, 255]),
        "color": list(Color)[n % 3],
        "size": "sml"[n % 3],
        "address": f"10.0.0.{n % 250 + 1}",
        "slug": f"Slug-{n}",
        "owner_id": None,
    }
    return {**values, **overrides}


def assert_same(obj: Any, values: dict[str, Any]) -> None:
    """The object read back holds exactly ``values`` (the slug lower-cased by its type)."""
    for key, value in values.items():
        expected = value.lower() if key == "slug" and isinstance(value, str) else value
        got = getattr(obj, key)
        if key == "address" and got is not None:
            got = str(got)
        assert got == expected, key


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements ``db`` sends while the block runs, on every pool."""
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engines = [engine.sync_engine for engine in db.engines()]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


# -- the types are known, or passed through ---------------------------------------------------


def test_every_column_has_a_kind_and_unknown_types_are_opaque() -> None:
    kinds = {c.key: kind_of(c.type) for c in Gadget.__table__.columns}
    assert kinds == {
        "ref": "uuid",
        "serial": "int",
        "small": "int",
        "count": "int",
        "big": "int",
        "amount": "decimal",
        "ratio": "float",
        "weight": "float",
        "active": "bool",
        "code": "text",
        "notes": "text",
        "day": "date",
        "opens": "time",
        "seen_at": "datetime",
        "local_at": "datetime",
        "span": "interval",
        "doc": "json",
        "docb": "jsonb",
        "tags": "array",
        "blob": "bytes",
        "color": "enum",
        "size": "enum",
        "address": "opaque",
        "slug": "opaque",
        "owner_id": "int",
    }


# -- writes and reads of every type -----------------------------------------------------------


async def test_create_then_read_back_on_every_path(clean: Database) -> None:
    values = gadget(5)
    async with clean.session() as s:
        created = await GadgetRepository(s).create(**values)
        assert isinstance(created.serial, int)  # the identity column, from the server
    async with clean.read() as s:
        assert_same(await GadgetRepository(s).get(values["ref"]), values)
    assert_same(await clean.get(Gadget, values["ref"]), values)
    [many] = await clean.get_many(Gadget, [values["ref"], uuid.UUID(int=999)])
    assert_same(many, values)
    with pytest.raises(NotFoundError):
        await clean.get(Gadget, uuid.uuid4())


@pytest.mark.parametrize("path", ["insert", "copy"])
async def test_add_many_on_both_paths_writes_every_type(clean: Database, path: str) -> None:
    rows = [gadget(n) for n in range(12)]
    async with clean.session() as s:
        repo = GadgetRepository(s)
        repo.copy_threshold = 5 if path == "copy" else 1000  # type: ignore[misc]
        with statements(clean) as sent:
            assert await repo.add_many(rows) == 12
        # COPY never shows as an INSERT statement; the INSERT path sends INSERTs.
        inserts = [q for q in sent if q.lstrip().upper().startswith("INSERT")]
        assert (len(inserts) == 0) == (path == "copy")
    async with clean.read() as s:
        got = await GadgetRepository(s).get_many([r["ref"] for r in rows])
    for obj, row in zip(sorted(got, key=lambda g: g.code), rows, strict=True):
        assert_same(obj, row)


async def test_add_many_returning_gives_every_type_back(clean: Database) -> None:
    rows = [gadget(n) for n in range(3)]
    async with clean.session() as s:
        objs = await GadgetRepository(s).add_many(rows, returning=True)
    for obj, row in zip(objs, rows, strict=True):
        assert_same(obj, row)


async def test_update_every_column_but_the_key(clean: Database) -> None:
    before, after = gadget(1), gadget(2)
    async with clean.session() as s:
        await GadgetRepository(s).create(**before)
    changes = {k: v for k, v in after.items() if k not in {"ref", "code"}}
    async with clean.session() as s:
        updated = await GadgetRepository(s).update(before["ref"], **changes)
        assert_same(updated, changes)
    assert_same(await clean.get(Gadget, before["ref"]), changes)


async def test_upsert_on_a_unique_column_and_on_a_composite_key(clean: Database) -> None:
    first = gadget(3)
    async with clean.session() as s:
        repo = GadgetRepository(s)
        await repo.upsert(first, on="code")
        again = await repo.upsert(
            {**gadget(4), "ref": uuid.UUID(int=77), "code": first["code"]},
            on="code",
            update=["ratio", "tags", "docb", "span", "color"],
        )
        assert again.ref == first["ref"]  # the existing row, updated
        assert (again.ratio, again.tags, again.color) == (1.0, ["t4", "shared"], Color.green)
        assert again.amount == first["amount"]  # not in update=
        pairs = PairingRepository(s)
        await pairs.upsert({"left": 1, "right": "a", "score": 1.0}, on=("left", "right"))
        pair = await pairs.upsert({"left": 1, "right": "a", "score": 2.5}, on=("left", "right"))
        assert pair.score == 2.5
        assert await pairs.count() == 1


async def test_delete_and_composite_keys_everywhere(clean: Database) -> None:
    async with clean.session() as s:
        pairs = PairingRepository(s)
        await pairs.add_many([{"left": i, "right": f"r{i}", "score": i / 2} for i in range(6)])
        assert (await pairs.get((2, "r2"))).score == 1.0
        assert [p.left for p in await pairs.get_many([(3, "r3"), (9, "x"), (1, "r1")])] == [3, 1]
        await pairs.delete((4, "r4"))
        with pytest.raises(NotFoundError):
            await pairs.delete((4, "r4"))
    assert (await clean.get(Pairing, (5, "r5"))).score == 2.5
    assert [p.right for p in await clean.get_many(Pairing, [(0, "r0"), (4, "r4")])] == ["r0"]
    with pytest.raises(InvalidTypeError):
        await clean.get(Pairing, (1, 2))  # the second part must be a string


async def test_stream_reads_every_type(clean: Database) -> None:
    rows = [gadget(n) for n in range(7)]
    async with clean.session() as s:
        await GadgetRepository(s).add_many(rows)
    async with clean.session() as s:
        seen = [g async for g in GadgetRepository(s).stream(order_by="code", batch_size=3)]
    assert [g.code for g in seen] == [r["code"] for r in rows]
    assert_same(seen[4], rows[4])


# -- filters and keyset pages, for every type -------------------------------------------------


async def test_every_operator_of_every_field_runs_and_agrees_with_eq(clean: Database) -> None:
    rows = [gadget(n) for n in range(9)]
    async with clean.session() as s:
        await GadgetRepository(s).add_many(rows)
    probe = rows[4]
    async with clean.read() as s:
        repo = GadgetRepository(s)
        for field in sorted(repo.filter_fields):
            column = repo._columns[field]
            value = probe[field] if field != "serial" else 1
            # A NULL is only ever asked for with is_null.
            for op in operators_for(column) if value is not None else ("is_null",):
                arg: object = value
                if op == "is_null":
                    arg = False
                elif op in {"in", "not_in"}:
                    arg = [value]
                elif op in {"contains", "icontains", "startswith", "istartswith"}:
                    arg = str(value)[:3]
                found = await repo.count([Filter(field, op, arg)])
                assert 0 <= found <= len(rows), (field, op)
                if op == "eq" and field not in {"serial", "owner_id"}:
                    expected = sum(1 for r in rows if r[field] == value)
                    if field == "slug":  # the TypeDecorator lower-cases what it stores
                        expected = sum(
                            1 for r in rows if str(r[field]).lower() == str(value).lower()
                        )
                    assert found == expected, field
                if op == "is_null":
                    nulls = sum(1 for r in rows if field in r and r[field] is None)
                    assert found == len(rows) - nulls, field


async def test_filter_values_from_a_query_string_are_converted(clean: Database) -> None:
    rows = [gadget(n) for n in range(6)]
    async with clean.session() as s:
        await GadgetRepository(s).add_many(rows)
    async with clean.read() as s:
        repo = GadgetRepository(s)
        assert await repo.count({"day__gte": "2026-01-04"}) == 3
        assert await repo.count({"opens": "03:30"}) == 1
        assert await repo.count({"ref": str(uuid.UUID(int=3))}) == 1
        assert await repo.count({"span__gt": "181"}) == 3  # seconds
        assert await repo.count({"ratio__lt": "0.5"}) == 2
        assert await repo.count({"local_at": "2026-01-01T12:02:00"}) == 1
        assert await repo.count({"color": "blue"}) == 2
        assert await repo.count({"size__in": ["s", "m"]}) == 4
        assert await repo.count({"docb": {"n": 2, "nested": {"ok": True}}}) == 1
        assert await repo.count({"tags": ["t1", "shared"]}) == 1
        assert await repo.count({"address": "10.0.0.3"}) == 1  # passed through to the server
        for bad in ({"day": "tomorrow"}, {"ref": "not-a-uuid"}, {"opens": 7}, {"doc": 1}):
            with pytest.raises(InvalidQueryError):
                await repo.count(bad)
        with pytest.raises(InvalidQueryError):  # json has no equality in PostgreSQL
            await repo.count({"doc__eq": {"n": 1}})


async def test_keyset_pages_by_every_sortable_field_match_one_ordered_list(
    clean: Database,
) -> None:
    rows = [gadget(n, small=n % 3, active=n % 4 == 0) for n in range(11)]
    async with clean.session() as s:
        await GadgetRepository(s).add_many(rows)
    async with clean.read() as s:
        repo = GadgetRepository(s)
        for field in sorted(repo.sort_fields):
            for key in (field, f"-{field}"):
                whole = [g.ref for g in await repo.list(order_by=key, limit=100)]
                paged: list[uuid.UUID] = []
                page = await repo.list(order_by=key, limit=4, cursor=None)
                paged += [g.ref for g in page]
                while page.next_cursor is not None:
                    page = await repo.list(order_by=key, limit=4, cursor=page.next_cursor)
                    paged += [g.ref for g in page]
                assert paged == whole, key
                assert len(paged) == len(rows), key


# -- refused before any SQL, or judged by the server ------------------------------------------

WRONG: list[tuple[str, object, type[Exception], str]] = [
    ("day", datetime(2026, 1, 1, 1), InvalidTypeError, "Gadget.day: expected a date (not a"),
    ("local_at", datetime(2026, 1, 1, tzinfo=UTC), InvalidQueryError, "a naive datetime"),
    ("seen_at", "2026-01-01", InvalidTypeError, "Gadget.seen_at: expected a datetime"),
    ("ratio", "1.5", InvalidTypeError, "Gadget.ratio: expected a float or an int"),
    ("ratio", True, InvalidTypeError, "Gadget.ratio: expected a float or an int"),
    ("ref", "zzz", InvalidTypeError, "Gadget.ref: expected a uuid.UUID"),
    ("opens", "09:00", InvalidTypeError, "Gadget.opens: expected a datetime.time"),
    ("span", 5, InvalidTypeError, "Gadget.span: expected a datetime.timedelta"),
    ("tags", "abc", InvalidTypeError, "Gadget.tags: expected a list"),
    ("tags", ["ok", 7], InvalidTypeError, "Gadget.tags[]: expected a string"),
    ("tags", ["x" * 21], InvalidQueryError, "Gadget.tags[]: expected a string of at most 20"),
    ("blob", "text", InvalidTypeError, "Gadget.blob: expected bytes"),
    ("color", "purple", InvalidQueryError, "Gadget.color: expected one of"),
    ("size", "xl", InvalidQueryError, "Gadget.size: expected one of ['l', 'm', 's']"),
    ("amount", 0.1, InvalidTypeError, "Gadget.amount: expected a Decimal or an int"),
    ("small", 2**15, InvalidQueryError, "Gadget.small: expected an integer from"),
    ("code", "a\x00b", InvalidQueryError, "Gadget.code: expected a string without NUL"),
    ("code", None, InvalidQueryError, "Gadget.code: expected a value (the column is NOT NULL)"),
]


# add_many's COPY leaves to the server what it refuses by itself (length, NOT NULL): its error
# names the row (the fourth: rows[3]) and the field instead of the layer's check.
SERVER_JUDGED_ON_COPY: dict[str, tuple[type[Exception], str]] = {
    "Gadget.tags[]: expected a string of at most 20": (
        InvalidQueryError,
        "add_many: rows[3]: Gadget.tags: the database refused the value (too long",
    ),
    "Gadget.code: expected a value (the column is NOT NULL)": (
        CheckViolationError,
        "add_many: rows[3]: not-null constraint violated on table 'ks_gadgets' (columns: code)",
    ),
}

VERBS = ["create", "add_many", "copy", "update", "upsert"]
# Every wrong value through every verb (the key is not one update() changes).
CASES = [
    (verb, *wrong) for verb in VERBS for wrong in WRONG if (verb, wrong[0]) != ("update", "ref")
]


@pytest.mark.parametrize(
    ("verb", "field", "value", "error", "message"), CASES, ids=lambda v: str(v)[:12]
)
async def test_a_wrong_value_for_a_known_type_is_refused_before_any_sql(
    clean: Database, field: str, value: object, error: type[Exception], message: str, verb: str
) -> None:
    async with clean.session() as s:
        await GadgetRepository(s).create(**gadget(0))
    server_judged = verb == "copy" and message in SERVER_JUDGED_ON_COPY
    if server_judged:
        error, message = SERVER_JUDGED_ON_COPY[message]
    async with clean.session() as s:
        repo = GadgetRepository(s)
        repo.copy_threshold = 2  # type: ignore[misc]
        with statements(clean) as sent, pytest.raises(error) as caught:
            if verb == "create":
                await repo.create(**gadget(1, **{field: value}))
            elif verb == "add_many":
                await repo.add_many([gadget(1, **{field: value})])
            elif verb == "copy":
                await repo.add_many(
                    [gadget(n) for n in range(1, 4)] + [gadget(4, **{field: value})]
                )
            elif verb == "update":
                changes: dict[str, Any] = {field: value}
                await repo.update(uuid.UUID(int=1), **changes)
            else:
                await repo.upsert(gadget(0, **{field: value}), on="code")
        assert message in str(caught.value)
        if server_judged:
            # The COPY (sent by the driver, not seen here) ran inside its savepoint, undone.
            assert [q.split()[0] for q in sent] == ["SAVEPOINT", "ROLLBACK"], sent
            assert isinstance(caught.value, AsyncDALError)
            assert (caught.value.row_index, caught.value.field) == (3, field)
        else:  # COPY too: its first chunk is checked before any SQL
            assert not [q for q in sent if not q.startswith(("SAVEPOINT", "RELEASE"))], sent
    async with clean.read() as s:
        assert await GadgetRepository(s).count() == 1  # nothing of the bad write landed


async def test_an_unknown_type_passes_through_and_the_server_judges(clean: Database) -> None:
    async with clean.session() as s:
        await GadgetRepository(s).create(**gadget(0))
    for verb in ("create", "copy"):
        with pytest.raises(InvalidQueryError) as caught:
            async with clean.session() as s:
                repo = GadgetRepository(s)
                repo.copy_threshold = 2  # type: ignore[misc]
                bad = gadget(1, address="not-an-address")
                if verb == "create":
                    await repo.create(**bad)
                else:
                    await repo.add_many([gadget(2), gadget(3), bad, gadget(4)])
        assert caught.value.__cause__ is not None  # the server's error, mapped
        if verb == "copy":
            # asyncpg refused to encode it (an address is parsed on the client): the row it
            # was encoding is named, though no field is (the driver does not say which).
            assert str(caught.value).startswith("add_many: rows[2]: ")
            assert (caught.value.row_index, caught.value.field) == (2, None)
    with pytest.raises(DuplicateError):
        async with clean.session() as s:
            await GadgetRepository(s).create(**gadget(5, code="c0000"))
    async with clean.read() as s:
        assert await GadgetRepository(s).count() == 1
        assert await s.scalar(select(func.count()).select_from(Gadget)) == 1


# -- property-based: any valid values round-trip ----------------------------------------------

_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=12,
)
_values = st.fixed_dictionaries(
    {
        "small": st.integers(-(2**15), 2**15 - 1),
        "count": st.integers(-(2**31), 2**31 - 1),
        "big": st.integers(-(2**63), 2**63 - 1),
        "amount": st.decimals(min_value=-(10**7), max_value=10**7, places=2, allow_nan=False),
        "ratio": st.floats(allow_nan=False, width=64),
        "weight": st.floats(allow_nan=False, allow_infinity=False),
        "active": st.booleans(),
        "notes": st.none() | _text,
        "day": st.dates(),
        "opens": st.times(),
        "seen_at": st.datetimes(
            min_value=datetime(1900, 1, 1), max_value=datetime(2900, 1, 1), timezones=st.just(UTC)
        ),
        "local_at": st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2900, 1, 1)),
        "span": st.timedeltas(min_value=timedelta(days=-(10**5)), max_value=timedelta(days=10**5)),
        "docb": st.none()
        | st.dictionaries(
            st.text(max_size=5).filter(lambda t: "\x00" not in t),
            st.integers(-1000, 1000),
            max_size=3,
        ),
        "tags": st.none() | st.lists(_text, max_size=4),
        "blob": st.none() | st.binary(max_size=32),
        "color": st.sampled_from(list(Color)),
        "size": st.sampled_from(["s", "m", "l"]),
    }
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=_values, copy=st.booleans())
async def test_any_valid_values_round_trip(
    kitchen: Database, values: dict[str, Any], copy: bool
) -> None:
    ref = uuid.uuid4()
    row = gadget(0, **values, ref=ref, code=f"p{ref.hex[:10]}")
    async with kitchen.session() as s:
        repo = GadgetRepository(s)
        if copy:
            repo.copy_threshold = 1  # type: ignore[misc]
            await repo.add_many([row])
        else:
            await repo.create(**row)
    try:
        assert_same(await kitchen.get(Gadget, ref), row)
    finally:
        async with kitchen.session() as s:
            await GadgetRepository(s).delete(ref)
