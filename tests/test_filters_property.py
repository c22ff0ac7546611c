"""Property: arbitrary names and values give rows or InvalidQueryError, and change nothing.

Fields, operators, values and sort keys are drawn from arbitrary text (plus the real names and
some SQL-injection classics), so most calls are invalid and some are valid. Whatever the input,
``list``/``count``/``exists`` either return results or raise ``InvalidQueryError``; the session
stays usable (no database error aborted its transaction), and afterwards the tables and their
row counts are exactly what they were.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from asyncdal import DALSession, Filter, InvalidQueryError
from asyncdal._repository.filters import ALL_OPERATORS
from asyncdal.accounts import User, UserRepository
from asyncdal.testing.factories import UserFactory, create

INJECTIONS = [
    "'; DROP TABLE users; --",
    "id; DELETE FROM users",
    "username) OR 1=1 --",
    "1 OR 1=1",
    '"users"',
    "pg_sleep(10)",
    "%",
    "_",
    "\\",
    "\x00",
]
FIELDS = sorted(UserRepository.filter_fields)
SORTS = sorted(UserRepository.sort_fields)

# Real names are drawn more often than junk, so a fair share of calls reaches the database.
names = st.one_of(
    st.sampled_from(FIELDS),
    st.sampled_from(FIELDS),
    st.sampled_from(INJECTIONS),
    st.text(max_size=20),
)
operators = st.one_of(
    st.sampled_from(["", "eq", "ne", "in", "is_null"]),
    st.sampled_from(sorted(ALL_OPERATORS)),
    st.text(max_size=12),
)
scalars = st.one_of(
    st.text(max_size=30),
    st.sampled_from(INJECTIONS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
)
values = st.one_of(scalars, st.lists(scalars, max_size=4))
sort_keys = st.one_of(
    st.sampled_from(SORTS),
    st.sampled_from([f"-{s}" for s in SORTS]),
    st.sampled_from(INJECTIONS),
    st.text(max_size=20),
)
queries = st.fixed_dictionaries(
    {
        "filters": st.lists(st.tuples(names, operators, values), max_size=2),
        "as_mapping": st.booleans(),
        "order_by": st.lists(sort_keys, max_size=2),
        "limit": st.one_of(
            st.none(), st.integers(min_value=-5, max_value=1500), st.text(max_size=4), st.just(10)
        ),
        "cursor": st.one_of(st.none(), st.none(), st.none(), st.text(max_size=40)),
    }
)


async def _schema(session: DALSession) -> list[tuple[str, int]]:
    """Every table of the schema with its row count: two queries."""
    tables = (
        await session.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
    ).all()
    # Table names come from the catalog, never from the test input.
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
    return [(name, int(n)) for name, n in (await session.execute(text(counts))).all()]


@pytest.fixture
async def seeded(session: DALSession) -> list[tuple[str, int]]:
    """Five users in the test's session, and the schema fingerprint to compare against."""
    await create(UserFactory, 5)
    return await _schema(session)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=queries)
async def test_arbitrary_queries_return_rows_or_invalid_query_error(
    session: DALSession, seeded: list[tuple[str, int]], query: dict[str, Any]
) -> None:
    filters = query["filters"]
    where: Any
    if query["as_mapping"]:
        where = {f"{field}__{op}" if op else field: value for field, op, value in filters}
    else:
        where = [Filter(field, op, value) for field, op, value in filters]
    repo = UserRepository(session)
    try:
        page = await repo.list(
            where, order_by=query["order_by"], limit=query["limit"], cursor=query["cursor"]
        )
    except InvalidQueryError as exc:
        message = str(exc)
    else:
        message = ""
        assert all(isinstance(u, User) for u in page)
        assert len(page) <= (query["limit"] or repo.default_limit)
        # The same filters are accepted by count and exists, and agree with the page.
        total = await repo.count(where)
        assert total >= len(page)
        assert await repo.exists(where) is (total > 0)
    event("rows" if not message else "InvalidQueryError")
    if not message:
        # Accepted means every name was on the allowlists.
        assert all(key.lstrip("-+") in SORTS for key in query["order_by"])
        if not query["as_mapping"]:
            assert all(f in FIELDS and op in ALL_OPERATORS for f, op, _ in filters)
    # Nothing changed, and the session still works: no database error aborted it.
    assert await _schema(session) == seeded


async def test_the_classic_injection_sort_key_only_raises(session: DALSession) -> None:
    repo = UserRepository(session)
    before = await _schema(session)
    for key in INJECTIONS:
        try:
            await repo.list(order_by=key)
        except InvalidQueryError:
            pass
        else:
            raise AssertionError(f"{key!r} was accepted as a sort key")
    assert await _schema(session) == before
