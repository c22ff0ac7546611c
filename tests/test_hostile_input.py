"""Hostile input through every public repository method: an error from the tree, nothing written.

Two layers of evidence. First, the inputs the error-contract review found escaping as raw
driver or Python errors, each with the exact error it must now raise. Then a property: arbitrary
values (NUL bytes, lone surrogates, oversize text, out-of-range and huge integers, NaN and
infinities, floats for money, bytes, containers, datetimes at the edges of time) in every
argument of every public repository method give a result or an ``AsyncDALError``. A refused
value (``InvalidQueryError``) is refused before any SQL: the session's transaction is still
usable afterwards, and the tables hold exactly the rows they held before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from asyncdal import AsyncDALError, DALSession, InvalidQueryError, InvalidTypeError
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import OrderRepository, Product, ProductRepository
from asyncdal.social import FollowRepository, Post, PostRepository
from asyncdal.testing.factories import PostFactory, ProductFactory, UserFactory, create_one

COUNTS = text(
    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts),"
    " (SELECT count(*) FROM products), (SELECT count(*) FROM orders),"
    " (SELECT count(*) FROM follows), (SELECT count(*) FROM likes),"
    " (SELECT count(*) FROM hashtags),"
    " (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')"
)


async def _counts(session: DALSession) -> tuple[int, ...]:
    return tuple((await session.execute(COUNTS)).one())


@dataclass(frozen=True)
class World:
    """Ids of rows the operations can point at (ids, not objects: a rolled-back savepoint
    expires loaded objects, and touching one then would load it outside the test's await)."""

    user_id: int
    post_id: int
    product_id: int


@pytest.fixture
async def world(session: DALSession) -> World:
    user: User = await create_one(UserFactory)
    post: Post = await create_one(PostFactory, author=user)
    product: Product = await create_one(ProductFactory, stock=5)
    return World(user.id, post.id, product.id)


def _any(value: object) -> Any:
    """A wrongly typed argument, as untyped callers (JSON, query strings) pass them."""
    return value


# -- the findings of the review, one by one --------------------------------------------------

EXPECTED: list[tuple[str, Callable[[DALSession, World], Awaitable[Any]], type[Exception]]] = [
    ("get with SQL text", lambda s, w: UserRepository(s).get("1; drop"), InvalidTypeError),
    ("get past bigint", lambda s, w: UserRepository(s).get(2**70), InvalidQueryError),
    ("get with a float", lambda s, w: UserRepository(s).get(1.5), InvalidTypeError),
    ("get_many of strings", lambda s, w: UserRepository(s).get_many(["1", "x"]), InvalidTypeError),
    ("get_many of a string", lambda s, w: UserRepository(s).get_many("123"), InvalidTypeError),
    ("delete with a string", lambda s, w: UserRepository(s).delete("7"), InvalidTypeError),
    (
        "update with a string id",
        lambda s, w: UserRepository(s).update("7", display_name="x"),
        InvalidTypeError,
    ),
    (
        "update a bool with text",
        lambda s, w: UserRepository(s).update(w.user_id, verified="yes please"),
        InvalidTypeError,
    ),
    (
        "create with a number for text",
        lambda s, w: UserRepository(s).create(username=123, email="n@x.org"),
        InvalidTypeError,
    ),
    (
        "create an unknown column",
        lambda s, w: UserRepository(s).create(username="u", email="u@x.org", is_admin=True),
        InvalidQueryError,
    ),
    (
        "create a counter",
        lambda s, w: UserRepository(s).create(username="u", email="u@x.org", follower_count=9),
        InvalidQueryError,
    ),
    (
        "NUL in text",
        lambda s, w: UserRepository(s).create(username="a\x00b", email="a@x.org"),
        InvalidQueryError,
    ),
    (
        "a lone surrogate",
        lambda s, w: UserRepository(s).create(username="a\ud800", email="s@x.org"),
        InvalidQueryError,
    ),
    (
        "text longer than the column",
        lambda s, w: UserRepository(s).create(username="x" * 65, email="l@x.org"),
        InvalidQueryError,
    ),
    (
        "add_many (COPY path) with NUL in the last row",
        lambda s, w: UserRepository(s).add_many(
            [{"username": f"c{i}", "email": f"c{i}@x.org"} for i in range(1499)]
            + [{"username": "bad\x00", "email": "bad@x.org"}]
        ),
        InvalidQueryError,
    ),
    (
        "add_many with a float for money",
        lambda s, w: ProductRepository(s).add_many(
            [{"sku": "F1", "name": "f", "price": 9.99, "stock": 1}]
        ),
        InvalidTypeError,
    ),
    (
        "money past numeric(12, 2)",
        lambda s, w: ProductRepository(s).create(
            sku="B1", name="b", price=Decimal("1e12"), stock=1
        ),
        InvalidQueryError,
    ),
    (
        "money with more decimals than kept",
        lambda s, w: ProductRepository(s).create(
            sku="B2", name="b", price=Decimal("1.005"), stock=1
        ),
        InvalidQueryError,
    ),
    (
        "NaN money",
        lambda s, w: ProductRepository(s).update(w.product_id, price=Decimal("NaN")),
        InvalidQueryError,
    ),
    (
        "a filter past the column's precision",
        lambda s, w: ProductRepository(s).list({"price__gt": "1e998"}),
        InvalidQueryError,
    ),
    (
        "a datetime that does not exist in UTC",
        lambda s, w: UserRepository(s).list(
            {"created_at__gte": datetime.max.replace(tzinfo=timezone(timedelta(hours=-14)))}
        ),
        InvalidQueryError,
    ),
    (
        "tags as one string",
        lambda s, w: PostRepository(s).create(author_id=w.user_id, body="b", tags="abc"),
        InvalidTypeError,
    ),
    (
        "like with a string",
        lambda s, w: PostRepository(s).like(_any("1"), w.post_id),
        InvalidTypeError,
    ),
    ("feed past bigint", lambda s, w: PostRepository(s).feed(2**64), InvalidQueryError),
    (
        "follow with a string",
        lambda s, w: FollowRepository(s).follow(w.user_id, _any("2")),
        InvalidTypeError,
    ),
    ("cancel with a string", lambda s, w: OrderRepository(s).cancel(_any("1")), InvalidTypeError),
    (
        "place for a string user",
        lambda s, w: OrderRepository(s).place(_any("1"), {w.product_id: 1}),
        InvalidTypeError,
    ),
    (
        "place 100k products",
        lambda s, w: OrderRepository(s).place(w.user_id, dict.fromkeys(range(1, 100001), 1)),
        InvalidQueryError,
    ),
    (
        "get_many past the key limit",
        lambda s, w: UserRepository(s).get_many(range(1, 100_002)),
        InvalidQueryError,
    ),
]


@pytest.mark.parametrize(("case", "call", "error"), EXPECTED, ids=[c[0] for c in EXPECTED])
async def test_each_finding_is_refused_clearly_before_any_sql(
    session: DALSession,
    world: World,
    case: str,
    call: Callable[[DALSession, World], Awaitable[Any]],
    error: type[Exception],
) -> None:
    before = await _counts(session)
    with pytest.raises(error) as caught:
        await call(session, world)
    assert type(caught.value) is error, f"{case}: {caught.value!r}"
    assert len(str(caught.value)) < 400  # names the field; never echoes the whole input
    # Refused before any SQL: the transaction was not aborted, and nothing was written.
    assert await _counts(session) == before


async def test_100k_ids_are_one_array_parameter_not_32k_placeholders(
    session: DALSession, world: World
) -> None:
    ids = [world.user_id, *range(10**12, 10**12 + 100_000 - 1)]
    assert [u.id for u in await UserRepository(session).get_many(ids)] == [world.user_id]


# -- the property: any value, any argument ---------------------------------------------------

_EDGE_TEXT = ["", "\x00", "a\x00b", "\ud800", "x" * 70, "y" * 10_000, "'; DROP TABLE users; --"]
_ZONES = [None, UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))]
hostile = st.one_of(
    st.text(max_size=40),
    st.sampled_from(_EDGE_TEXT),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("1e12"), Decimal("-0.001"), Decimal("9999999999.99")]),
    st.booleans(),
    st.none(),
    st.binary(max_size=8),
    st.datetimes(timezones=st.sampled_from(_ZONES)),
    st.sampled_from([datetime.min, datetime.max]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)

Op = Callable[[DALSession, World, Any], Awaitable[Any]]
_n = iter(range(10**9))


def _fresh() -> str:
    return f"h{next(_n)}"


OPERATIONS: dict[str, Op] = {
    "users.create(username=)": lambda s, w, v: UserRepository(s).create(
        username=v, email=f"{_fresh()}@x.org"
    ),
    "users.create(email=)": lambda s, w, v: UserRepository(s).create(username=_fresh(), email=v),
    "users.create(display_name=)": lambda s, w, v: UserRepository(s).create(
        username=_fresh(), email=f"{_fresh()}@x.org", display_name=v
    ),
    "users.get": lambda s, w, v: UserRepository(s).get(v),
    "users.get_many": lambda s, w, v: UserRepository(s).get_many([v]),
    "users.get_many(list)": lambda s, w, v: UserRepository(s).get_many(v),
    "users.delete": lambda s, w, v: UserRepository(s).delete(v),
    "users.update(verified=)": lambda s, w, v: UserRepository(s).update(w.user_id, verified=v),
    "users.update(id)": lambda s, w, v: UserRepository(s).update(v, display_name="d"),
    "users.upsert": lambda s, w, v: UserRepository(s).upsert(
        {"username": v, "email": f"{_fresh()}@x.org"}, on="username"
    ),
    "users.list(filter)": lambda s, w, v: UserRepository(s).list({"follower_count__gte": v}),
    "users.list(created_at)": lambda s, w, v: UserRepository(s).list({"created_at__lt": v}),
    "users.add_many(copy)": lambda s, w, v: UserRepository(s).add_many(
        [{"username": _fresh(), "email": f"{_fresh()}@x.org"} for _ in range(1000)]
        + [{"username": v, "email": f"{_fresh()}@x.org"}]
    ),
    "products.create(price=)": lambda s, w, v: ProductRepository(s).create(
        sku=_fresh(), name="p", price=v, stock=1
    ),
    "products.create(stock=)": lambda s, w, v: ProductRepository(s).create(
        sku=_fresh(), name="p", price=Decimal("1.00"), stock=v
    ),
    "products.list(price)": lambda s, w, v: ProductRepository(s).list({"price__gt": v}),
    "posts.create(body=)": lambda s, w, v: PostRepository(s).create(author_id=w.user_id, body=v),
    "posts.create(tags=)": lambda s, w, v: PostRepository(s).create(
        author_id=w.user_id, body="b", tags=v
    ),
    "posts.like": lambda s, w, v: PostRepository(s).like(v, w.post_id),
    "posts.feed": lambda s, w, v: PostRepository(s).feed(v),
    "follows.follow": lambda s, w, v: FollowRepository(s).follow(w.user_id, v),
    "orders.place(items)": lambda s, w, v: OrderRepository(s).place(w.user_id, {w.product_id: v}),
    "orders.place(user)": lambda s, w, v: OrderRepository(s).place(v, {w.product_id: 1}),
    "orders.cancel": lambda s, w, v: OrderRepository(s).cancel(v),
}


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(sorted(OPERATIONS)), value=hostile)
async def test_any_value_in_any_argument_gives_a_result_or_an_error_of_the_tree(
    session: DALSession, world: World, name: str, value: Any
) -> None:
    savepoint = await session.begin_nested()
    before = await _counts(session)
    try:
        await OPERATIONS[name](session, world, value)
    except InvalidQueryError as exc:
        event(f"{name}: {type(exc).__name__}")
        # Refused before any SQL: the savepoint is intact and nothing was written.
        assert await _counts(session) == before
        await savepoint.rollback()
    except AsyncDALError as exc:
        # A database verdict on a well-formed value (a missing row, a duplicate, a foreign
        # key): mapped into the tree; the statement failed, so it wrote nothing.
        event(f"{name}: {type(exc).__name__}")
        await savepoint.rollback()
        assert await _counts(session) == before
    else:
        event(f"{name}: accepted")
        await savepoint.rollback()
