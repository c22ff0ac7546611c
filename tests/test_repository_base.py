"""Repository[M]: every method on real rows, and every InvalidQueryError case."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, relationship
from sqlalchemy.sql import Executable

from asyncdal import (
    Base,
    CheckViolationError,
    ConcurrentSessionUseError,
    DALSession,
    Database,
    DatabaseUnavailableError,
    DuplicateError,
    Filter,
    ForeignKeyError,
    InvalidQueryError,
    InvalidTypeError,
    NotFoundError,
    Page,
    ReadRepository,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import (
    Order,
    OrderItem,
    OrderRepository,
    OrderStatus,
    Product,
    ProductRepository,
)
from asyncdal.testing.factories import OrderItemFactory, ProductFactory, UserFactory, create


async def _users(n: int = 5) -> list[User]:
    return await create(UserFactory, n)


# -- get / get_many --------------------------------------------------------------------------


async def test_get_returns_the_row(session: DALSession) -> None:
    (user,) = await _users(1)
    session.expunge_all()
    got = await UserRepository(session).get(user.id)
    assert (got.id, got.username) == (user.id, user.username)


async def test_get_missing_raises_not_found_naming_model_and_key(session: DALSession) -> None:
    with pytest.raises(NotFoundError, match="User 999999 not found") as info:
        await UserRepository(session).get(999_999)
    assert (info.value.model, info.value.key) == ("User", 999_999)


class _OrderWithItems(Base):
    """A service's own view of ``orders``: its items loaded eagerly, by a joined load."""

    __table__ = Order.__table__
    items: Mapped[list[OrderItem]] = relationship(
        lazy="joined", viewonly=True, order_by=OrderItem.product_id
    )


class _OrderWithItemsRepository(ReadRepository[_OrderWithItems]):
    model = _OrderWithItems


class _OrderWithItemsOldSpelling(Base):
    """The same, with ``lazy=False``: the old spelling of a joined load."""

    __table__ = Order.__table__
    items: Mapped[list[OrderItem]] = relationship(
        lazy=False, viewonly=True, order_by=OrderItem.product_id
    )


class _OrderWithItemsOldSpellingRepository(ReadRepository[_OrderWithItemsOldSpelling]):
    model = _OrderWithItemsOldSpelling


@contextmanager
def _orm_queries(session: DALSession) -> Iterator[list[Executable]]:
    """The ORM statements ``session`` runs while the block runs."""
    sent: list[Executable] = []

    def record(state: ORMExecuteState) -> None:
        sent.append(state.statement)

    event.listen(session.sync_session, "do_orm_execute", record)
    try:
        yield sent
    finally:
        event.remove(session.sync_session, "do_orm_execute", record)


async def test_get_of_an_object_in_the_session_sends_no_query(session: DALSession) -> None:
    (user,) = await _users(1)
    repo = UserRepository(session)
    with _orm_queries(session) as sent:
        assert await repo.get(user.id) is user
        assert await repo.get((user.id,)) is user
    assert sent == []


async def test_get_runs_one_statement_object_for_every_key(session: DALSession) -> None:
    # The reused statement is what makes Repository.get cheaper than session.get: SQLAlchemy
    # memoizes a statement's cache key, so it is computed once, not per lookup.
    users = await _users(2)
    session.expunge_all()
    with _orm_queries(session) as sent:
        got = [await UserRepository(session).get(user.id) for user in users]
    assert [u.id for u in got] == [u.id for u in users]
    assert len(sent) == 2
    assert sent[0] is sent[1]


async def test_get_refreshes_an_expired_object(session: DALSession) -> None:
    (user,) = await _users(1)
    user_id = user.id
    await session.execute(update(User).where(User.id == user_id).values(display_name="new"))
    session.expire(user)
    with _orm_queries(session) as sent:
        got = await UserRepository(session).get(user_id)
    assert got is user
    assert got.display_name == "new"
    assert len(sent) == 1


async def test_get_after_the_row_was_deleted_in_the_session_is_not_found(
    session: DALSession,
) -> None:
    (user,) = await _users(1)
    await session.delete(user)
    await session.flush()
    with pytest.raises(NotFoundError):
        await UserRepository(session).get(user.id)


@pytest.mark.parametrize(
    "repository", [_OrderWithItemsRepository, _OrderWithItemsOldSpellingRepository]
)
async def test_get_loads_a_joined_eager_collection_once_per_row(
    session: DALSession, repository: type[ReadRepository[Any]]
) -> None:
    # A joined load of a collection repeats the order's row once per item: the lookup must
    # make them one object, or SQLAlchemy refuses the result.
    items = await create(OrderItemFactory, 1)
    order = items[0].order
    more = await create(OrderItemFactory, 2, order=order)
    session.expunge_all()
    got = await repository(session).get(order.id)
    assert isinstance(got, repository.model)
    assert sorted(i.product_id for i in got.items) == sorted(i.product_id for i in [*items, *more])


async def test_get_many_keeps_the_order_asked_for_and_skips_missing(session: DALSession) -> None:
    users = await _users(3)
    ids = [users[2].id, 999_999, users[0].id, users[2].id]
    got = await UserRepository(session).get_many(ids)
    assert [u.id for u in got] == [users[2].id, users[0].id]
    assert await UserRepository(session).get_many([]) == []


# -- list / count / exists -------------------------------------------------------------------


async def test_list_filters_with_every_operator(session: DALSession) -> None:
    users = await create(UserFactory, 6)
    for i, user in enumerate(users):
        user.follower_count = i * 10
        user.display_name = f"name {i}"
    users[5].display_name = "100%_real\\deal"
    await session.flush()
    repo = UserRepository(session)
    ids = [u.id for u in users]

    async def ids_of(where: dict[str, object]) -> list[int]:
        page = await repo.list({"id__in": ids, **where}, order_by="follower_count")
        return [ids.index(u.id) for u in page]

    assert await ids_of({"follower_count": 20}) == [2]
    assert await ids_of({"follower_count__eq": "20"}) == [2]
    assert await ids_of({"follower_count__ne": 20}) == [0, 1, 3, 4, 5]
    assert await ids_of({"follower_count__lt": 20}) == [0, 1]
    assert await ids_of({"follower_count__lte": 20}) == [0, 1, 2]
    assert await ids_of({"follower_count__gt": 30}) == [4, 5]
    assert await ids_of({"follower_count__gte": 30}) == [3, 4, 5]
    assert await ids_of({"follower_count__in": [10, 40]}) == [1, 4]
    assert await ids_of({"follower_count__not_in": [10, 40]}) == [0, 2, 3, 5]
    assert await ids_of({"display_name__is_null": True}) == []
    assert await ids_of({"display_name__is_null": False}) == [0, 1, 2, 3, 4, 5]
    assert await ids_of({"display_name__startswith": "name "}) == [0, 1, 2, 3, 4]
    assert await ids_of({"display_name__istartswith": "NAME 3"}) == [3]
    assert await ids_of({"display_name__contains": "e 4"}) == [4]
    assert await ids_of({"display_name__icontains": "E 4"}) == [4]
    assert await ids_of({"verified": "false", "username": users[1].username}) == [1]


async def test_like_wildcards_in_values_match_literally(session: DALSession) -> None:
    users = await create(UserFactory, 3)
    users[0].display_name = "100%_real\\deal"
    users[1].display_name = "100 percent real"
    users[2].display_name = "1000 xreal"
    await session.flush()
    repo = UserRepository(session)
    scope = {"id__in": [u.id for u in users]}
    for pattern in ("%", "_", "\\", "0%_r", "%_real\\d"):
        page = await repo.list({**scope, "display_name__contains": pattern})
        assert [u.id for u in page] == [users[0].id], pattern
    page = await repo.list({**scope, "display_name__startswith": "100%"})
    assert [u.id for u in page] == [users[0].id]


async def test_filter_objects_and_enum_datetime_decimal_values(session: DALSession) -> None:
    (user,) = await _users(1)
    products = await create(ProductFactory, 2)
    order = Order(user_id=user.id, status=OrderStatus.PAID, total=Decimal("12.50"))
    session.add(order)
    await session.flush()
    orders = OrderRepository(session)
    found = await orders.list([Filter("status", "eq", "paid"), Filter("user_id", "eq", user.id)])
    assert [o.id for o in found] == [order.id]
    assert await orders.count([Filter("status", "eq", OrderStatus.CANCELLED)]) == 0
    assert await orders.count({"total__gte": "12.5", "user_id": user.id}) == 1
    assert await orders.count({"total__gt": Decimal("12.50"), "user_id": user.id}) == 0
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert await orders.count({"created_at__lt": later, "user_id": user.id}) == 1
    assert await orders.count({"created_at__gte": later, "user_id": user.id}) == 0
    cheap = await ProductRepository(session).list(
        {"id__in": [p.id for p in products], "price__lt": products[1].price + 1},
        order_by="-price",
    )
    assert [p.id for p in cheap] == sorted(
        (p.id for p in products), key=lambda i: -next(p.price for p in products if p.id == i)
    )


async def test_count_and_exists(session: DALSession) -> None:
    users = await _users(4)
    repo = UserRepository(session)
    ids = [u.id for u in users]
    assert await repo.count({"id__in": ids}) == 4
    assert await repo.count({"id__in": ids, "username": users[0].username}) == 1
    assert await repo.exists({"username": users[3].username}) is True
    assert await repo.exists({"username": "nobody-has-this-name"}) is False
    total = await session.scalar(select(func.count()).select_from(User))
    assert await repo.count() == total


async def test_offset_pagination_walks_every_row_once(session: DALSession) -> None:
    users = await _users(7)
    repo = UserRepository(session)
    where = {"id__in": [u.id for u in users]}
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = await repo.list(where, order_by="-username", limit=3, offset=offset)
        assert isinstance(page, Page)
        assert page.limit == 3
        seen.extend(u.id for u in page.items)
        offset = page.next_offset
    expected = [u.id for u in sorted(users, key=lambda u: u.username, reverse=True)]
    assert seen == expected


async def test_keyset_pagination_with_mixed_directions(session: DALSession) -> None:
    users = await _users(8)
    for i, user in enumerate(users):
        user.follower_count = i % 3
    await session.flush()
    repo = UserRepository(session)
    where = {"id__in": [u.id for u in users]}
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await repo.list(
            where, order_by=["-follower_count", "username"], limit=3, cursor=cursor
        )
        pages += 1
        seen.extend(u.id for u in page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected = sorted(users, key=lambda u: (-u.follower_count, u.username))
    assert seen == [u.id for u in expected]
    assert pages == 3


async def test_keyset_pages_are_stable_under_concurrent_inserts(
    session: DALSession, db: object
) -> None:
    users = [User(username=f"k{i:02d}", email=f"k{i:02d}@example.org") for i in range(0, 20, 2)]
    session.add_all(users)
    await session.flush()
    repo = UserRepository(session)
    where = {"username__startswith": "k"}
    first = await repo.list(where, order_by="username", limit=4)
    assert [u.username for u in first] == ["k00", "k02", "k04", "k06"]
    # Rows appear before and after the cursor between two page requests.
    session.add_all(User(username=f"k{i:02d}", email=f"k{i:02d}@example.org") for i in (1, 3, 7, 9))
    await session.flush()
    by_cursor = await repo.list(where, order_by="username", limit=4, cursor=first.next_cursor)
    assert [u.username for u in by_cursor] == ["k07", "k08", "k09", "k10"]
    by_offset = await repo.list(where, order_by="username", limit=4, offset=4)
    # Offset pagination repeats k06, which the first page already showed: the cursor does not.
    assert "k06" in [u.username for u in by_offset]


# -- InvalidQueryError: each case names what was wrong and what is allowed --------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"where": {"password": "x"}}, r"unknown filter field 'password'; allowed fields: \["),
        ({"where": {"username__regex": "x"}}, r"unknown operator 'regex' for field 'username'"),
        ({"where": {"verified__gt": True}}, r"unknown operator 'gt' .*allowed operators"),
        (
            {"where": {"follower_count": "ten"}},
            r"invalid value str of length 3 for field 'follower_count'",
        ),
        ({"where": {"follower_count": 2**40}}, r"expected an integer in"),
        ({"where": {"follower_count": True}}, r"expected an integer"),
        ({"where": {"follower_count__in": "1,2"}}, r"a list of values for 'in'"),
        ({"where": {"follower_count__in": list(range(1001))}}, r"at most 1000 values"),
        ({"where": {"username": "a\x00b"}}, r"without NUL"),
        ({"where": {"username": "\ud800"}}, r"encodable as UTF-8"),
        ({"where": {"username": 7}}, r"expected a string"),
        ({"where": {"created_at__gt": "yesterday"}}, r"a datetime or an ISO 8601 string"),
        ({"where": {"verified__is_null": "maybe"}}, r"true or false"),
        ({"where": "username=ada"}, r"not a string"),
        ({"where": [("username", "eq", "ada")]}, r"must be Filter objects"),
        ({"order_by": "password"}, r"unknown sort key 'password'; allowed sort keys: \["),
        ({"order_by": "'; DROP TABLE users; --"}, r"unknown sort key"),
        ({"order_by": ["username", "-username"]}, r"given twice"),
        ({"limit": -1}, r"limit must be an integer from 1 to 1000, got -1"),
        ({"limit": 0}, r"limit must be an integer from 1 to 1000, got 0"),
        ({"limit": 1001}, r"limit must be an integer from 1 to 1000, got 1001"),
        ({"limit": "10"}, r"limit must be an integer from 1 to 1000, got '10'"),
        ({"offset": -5}, r"offset must be an integer from 0 to \d+, got -5"),
        ({"offset": 0, "cursor": "abc"}, r"either offset= or cursor="),
        ({"cursor": "not base64 at all!"}, r"malformed cursor"),
        ({"cursor": ""}, r"malformed cursor"),
        ({"cursor": "x" * 5000}, r"malformed cursor"),
    ],
)
async def test_invalid_queries_are_rejected_with_a_clear_message(
    session: DALSession, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        await UserRepository(session).list(**kwargs)  # type: ignore[arg-type]


async def test_tampered_cursors_are_rejected(session: DALSession) -> None:
    import base64
    import json

    await _users(3)
    repo = UserRepository(session)
    page = await repo.list(order_by="username", limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidQueryError, match="does not match the ordering"):
        await repo.list(order_by="-username", limit=1, cursor=page.next_cursor)

    def forge(document: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).decode()

    for bad, message in [
        ({"o": ["username", "id"], "k": ["a"]}, "wrong number"),
        (
            {"o": ["username", "id"], "k": ["a", "DROP TABLE users"]},
            "malformed cursor: invalid value",
        ),
        ({"o": ["username", "id"], "k": [1, 2]}, "malformed cursor: invalid value"),
        ({"o": ["username", "id"], "k": ["a", 1], "x": 1}, "malformed cursor"),
        (["username"], "malformed cursor"),
    ]:
        with pytest.raises(InvalidQueryError, match=message):
            await repo.list(order_by="username", limit=1, cursor=forge(bad))
    # A well-formed cursor made by hand is just a position: still only bound values.
    ok = await repo.list(order_by="username", cursor=forge({"o": ["username", "id"], "k": ["", 0]}))
    assert len(ok) >= 3


async def test_count_and_exists_reject_the_same_bad_input(session: DALSession) -> None:
    repo = UserRepository(session)
    with pytest.raises(InvalidQueryError, match="unknown filter field"):
        await repo.count({"nope": 1})
    with pytest.raises(InvalidQueryError, match="unknown operator"):
        await repo.exists({"id__like": 1})


# -- writes ----------------------------------------------------------------------------------


async def test_add_sets_id_and_server_defaults(session: DALSession) -> None:
    user = await UserRepository(session).add(User(username="adder", email="adder@example.org"))
    assert user.id is not None
    assert user.follower_count == 0


async def test_add_duplicate_raises_duplicate_error_with_constraint(session: DALSession) -> None:
    repo = UserRepository(session)
    await repo.add(User(username="twin", email="twin1@example.org"))
    with pytest.raises(DuplicateError) as info:
        await repo.add(User(username="twin", email="twin2@example.org"))
    assert info.value.constraint == "uq_users_username"


async def test_update_returns_the_fresh_row_and_refreshes_the_session(session: DALSession) -> None:
    (user,) = await _users(1)
    repo = UserRepository(session)
    updated = await repo.update(user.id, display_name="Ada L.", verified=True)
    assert updated is user  # the same identity, refreshed in place
    assert (user.display_name, user.verified) == ("Ada L.", True)
    row = (await session.execute(select(User.display_name).where(User.id == user.id))).scalar()
    assert row == "Ada L."


async def test_update_errors(session: DALSession) -> None:
    (user,) = await _users(1)
    repo = UserRepository(session)
    with pytest.raises(NotFoundError):
        await repo.update(999_999, display_name="x")
    with pytest.raises(InvalidQueryError, match="unknown columns"):
        await repo.update(user.id, password="x")
    with pytest.raises(InvalidQueryError, match="no values"):
        await repo.update(user.id)
    # Counters are the repository's to keep exact, and the primary key identifies the row.
    with pytest.raises(InvalidQueryError, match=r"\['follower_count'\] cannot be written"):
        await repo.update(user.id, follower_count=1_000_000)
    with pytest.raises(InvalidQueryError, match=r"\['id'\] cannot be written"):
        await repo.update(user.id, id=123)
    with pytest.raises(InvalidQueryError, match="maintained by the repository"):
        await repo.upsert({"username": user.username, "follower_count": 5}, on="username")


async def test_update_check_violation_is_mapped_with_constraint(session: DALSession) -> None:
    (product,) = await create(ProductFactory, 1)
    with pytest.raises(CheckViolationError) as info:
        await ProductRepository(session).update(product.id, stock=-1)
    assert info.value.constraint == "ck_products_stock_not_negative"


async def test_one_session_used_by_two_tasks_is_refused(session: DALSession) -> None:
    users = await _users(2)
    repo = UserRepository(session)
    results = await asyncio.gather(
        repo.list({"id__in": [u.id for u in users]}),
        repo.count({"id__in": [u.id for u in users]}),
        return_exceptions=True,
    )
    assert any(isinstance(r, ConcurrentSessionUseError) for r in results), results
    # The task that got in first finished its query normally.
    assert any(isinstance(r, (Page, int)) for r in results), results


async def test_unreachable_database_is_database_unavailable(unused_port: int) -> None:
    db = Database.from_url(
        f"postgresql+asyncpg://postgres@127.0.0.1:{unused_port}/nowhere", connect_timeout=2
    )
    try:
        async with db.sessionmaker() as s:
            with pytest.raises(DatabaseUnavailableError):
                await UserRepository(s).get(1)
            with pytest.raises(DatabaseUnavailableError):
                await UserRepository(s).list()
    finally:
        await db.dispose()


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_update_constraint_violation_is_mapped(session: DALSession) -> None:
    users = await _users(2)
    with pytest.raises(DuplicateError, match="uq_users_email"):
        await UserRepository(session).update(users[0].id, email=users[1].email)


async def test_delete_removes_the_row_or_raises_not_found(session: DALSession) -> None:
    (user,) = await _users(1)
    repo = UserRepository(session)
    await repo.delete(user.id)
    assert await repo.exists({"id": user.id}) is False
    with pytest.raises(NotFoundError):
        await repo.delete(user.id)


async def test_delete_restricted_by_foreign_key(session: DALSession) -> None:
    (user,) = await _users(1)
    session.add(Order(user_id=user.id, total=Decimal("1.00")))
    await session.flush()
    with pytest.raises(ForeignKeyError) as info:
        await UserRepository(session).delete(user.id)
    assert info.value.constraint == "fk_orders_user_id_users"


async def test_upsert_inserts_then_updates_the_same_row(session: DALSession) -> None:
    repo = ProductRepository(session)
    values = {"sku": "UPS-1", "name": "Widget", "price": Decimal("2.50"), "stock": 5}
    first = await repo.upsert(values, on="sku")
    second = await repo.upsert({**values, "price": Decimal("3.00"), "stock": 9}, on=("sku",))
    assert second.id == first.id
    assert (second.price, second.stock) == (Decimal("3.00"), 9)
    # update= limits what an existing row gets overwritten with.
    third = await repo.upsert({**values, "stock": 1}, on="sku", update=["name"])
    assert (third.id, third.stock, third.price) == (first.id, 9, Decimal("3.00"))
    assert await repo.count({"sku": "UPS-1"}) == 1


async def test_upsert_rejects_keys_without_unique_constraint(session: DALSession) -> None:
    repo = ProductRepository(session)
    values = {"sku": "UPS-2", "name": "W", "price": Decimal("1"), "stock": 1}
    with pytest.raises(InvalidQueryError, match=r"on=\('name',\) is not an allowed conflict key"):
        await repo.upsert(values, on="name")
    with pytest.raises(InvalidQueryError, match="must include the conflict key"):
        await UserRepository(session).upsert({"email": "a@example.org"}, on="username")
    with pytest.raises(InvalidQueryError, match="unknown columns"):
        await repo.upsert({**values, "colour": "red"}, on="sku")


async def test_stream_yields_every_row_in_order(session: DALSession) -> None:
    users = await _users(25)
    repo = UserRepository(session)
    streamed = [
        u.id
        async for u in repo.stream(
            {"id__in": [u.id for u in users]}, order_by="-username", batch_size=7
        )
    ]
    assert streamed == [u.id for u in sorted(users, key=lambda u: u.username, reverse=True)]
    with pytest.raises(InvalidQueryError):
        async for _ in repo.stream({"bogus": 1}):
            pass


async def test_repository_subclass_allowlists_are_checked_at_definition() -> None:
    from asyncdal import Repository

    with pytest.raises(TypeError, match="not columns"):

        class _Bad(Repository[Product]):
            model = Product
            filter_fields = frozenset({"sku", "secret"})

    with pytest.raises(TypeError, match="no unique constraint"):

        class _BadKey(Repository[Product]):
            model = Product
            upsert_keys = (("name",),)


async def test_stream_stopped_early_leaves_the_session_usable(session: DALSession) -> None:
    from contextlib import aclosing

    users = await _users(10)
    repo = UserRepository(session)
    taken = []
    stream = repo.stream({"id__in": [u.id for u in users]}, batch_size=2)
    async with aclosing(stream) as rows:
        async for user in rows:
            taken.append(user.id)
            if len(taken) == 3:
                break
    assert taken == sorted(u.id for u in users)[:3]
    assert await repo.count({"id__in": [u.id for u in users]}) == 10


@pytest.mark.parametrize("repository", [UserRepository, ProductRepository, ReadRepository])
async def test_a_repository_refuses_a_session_that_maps_no_errors(
    db: Database, repository: type[ReadRepository[Any]]
) -> None:
    """Issue 19: a plain AsyncSession (the caller's own async_sessionmaker) was accepted, and
    since repositories do not re-wrap errors, its duplicate key reached the caller as a raw
    sqlalchemy IntegrityError. Refused at construction, before any SQL."""
    async with AsyncSession(db.engine) as plain:
        for wrong in (plain, None, "session", db):
            with pytest.raises(InvalidTypeError, match="DALSession") as refused:
                repository(wrong)  # type: ignore[arg-type]
            assert type(wrong).__name__ in str(refused.value)
        assert not plain.in_transaction()  # nothing was sent
    async with db.session() as s:
        assert repository(s).session is s


async def test_through_a_dal_session_the_same_mistake_is_a_layer_error(
    committed_db: Database,
) -> None:
    async with committed_db.session() as s:
        await UserRepository(s).create(username="twin", email="twin@example.org")
    with pytest.raises(DuplicateError):
        async with committed_db.session() as s:
            await UserRepository(s).create(username="twin", email="twin2@example.org")
