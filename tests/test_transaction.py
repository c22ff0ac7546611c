"""db.transaction: retried on serialization failure and deadlock only, with attempts counted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update

from asyncdal import (
    ConcurrencyError,
    ConfigurationError,
    DALSession,
    Database,
    DuplicateError,
    QueryTimeoutError,
)
from asyncdal._error_mapping import sqlstate_of
from asyncdal._transaction import BACKOFF_BASE, BACKOFF_MAX, backoff_delay
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Product


async def _product(db: Database, stock: int = 10, sku: str = "TX-1") -> int:
    async with db.session() as s:
        product = Product(sku=sku, name="tx", price=Decimal("1.00"), stock=stock)
        s.add(product)
        await s.flush()
        return product.id


async def _scalar(db: Database, stmt: object) -> object:
    async with db.session() as s:
        return await s.scalar(stmt)  # type: ignore[call-overload]


async def _bump_elsewhere(db: Database, product_id: int) -> None:
    """Commit a change to the product from another session (another connection)."""
    async with db.session() as other:
        await other.execute(
            update(Product).where(Product.id == product_id).values(stock=Product.stock - 1)
        )


@pytest.mark.parametrize("isolation", ["REPEATABLE READ", "SERIALIZABLE"])
async def test_serialization_failure_is_retried_and_the_retry_succeeds(
    committed_db: Database, isolation: str
) -> None:
    product_id = await _product(committed_db)
    calls = 0

    async def take_two(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        # Every attempt writes a marker row first: a failed attempt must leave nothing behind.
        await UserRepository(s).create(username="marker", email="marker@x.org")
        stock = await s.scalar(select(Product.stock).where(Product.id == product_id))
        assert stock is not None
        if calls == 1:
            await _bump_elsewhere(committed_db, product_id)  # conflicts with our snapshot
        await s.execute(update(Product).where(Product.id == product_id).values(stock=stock - 2))
        return stock

    seen = await committed_db.transaction(take_two, isolation=isolation)
    assert calls == 2
    assert seen == 9  # the retry read the other transaction's committed change
    assert await _scalar(committed_db, select(Product.stock).where(Product.id == product_id)) == 7
    markers = select(func.count()).select_from(User).where(User.username == "marker")
    assert await _scalar(committed_db, markers) == 1


async def test_retries_exhausted_raise_concurrency_error_with_attempts(
    committed_db: Database,
) -> None:
    product_id = await _product(committed_db)
    calls = 0

    async def always_conflicts(s: DALSession) -> None:
        nonlocal calls
        calls += 1
        stock = await s.scalar(select(Product.stock).where(Product.id == product_id))
        await _bump_elsewhere(committed_db, product_id)
        await s.execute(update(Product).where(Product.id == product_id).values(stock=stock))

    with pytest.raises(ConcurrencyError, match="failed 3 time") as info:
        await committed_db.transaction(always_conflicts, retries=2, isolation="repeatable read")
    assert info.value.attempts == 3
    assert calls == 3
    assert info.value.sqlstate == "40001"
    # Chained: the last attempt's mapped error, and under it the driver's.
    last = info.value.__cause__
    assert last is not None
    assert last.__cause__ is not None
    assert sqlstate_of(last.__cause__) == "40001"
    # Only the three interfering commits happened; our updates all rolled back.
    assert await _scalar(committed_db, select(Product.stock).where(Product.id == product_id)) == 7


async def test_deadlock_is_retried(committed_db: Database) -> None:
    a = await _product(committed_db, sku="DL-A")
    b = await _product(committed_db, sku="DL-B")
    calls = {a: 0, b: 0}
    locked = {a: asyncio.Event(), b: asyncio.Event()}

    def lock_both(first: int, second: int) -> Callable[[DALSession], Awaitable[int]]:
        async def work(s: DALSession) -> int:
            calls[first] += 1
            # Detect the deadlock quickly instead of after the default 1 s.
            await s.execute(text("SET LOCAL deadlock_timeout = '50ms'"))
            lock = update(Product).values(stock=Product.stock - 1)
            await s.execute(lock.where(Product.id == first))
            if calls[first] == 1:
                locked[first].set()
                await locked[second].wait()  # both hold one row: now cross over
            await s.execute(lock.where(Product.id == second))
            return calls[first]

        return work

    results = await asyncio.gather(
        committed_db.transaction(lock_both(a, b)),
        committed_db.transaction(lock_both(b, a)),
    )
    # PostgreSQL aborted exactly one of the two with 40P01; it ran again and succeeded.
    assert sorted(results) == [1, 2]
    assert sum(calls.values()) == 3
    stocks = select(Product.stock).where(Product.id.in_([a, b])).order_by(Product.id)
    async with committed_db.session() as s:
        assert (await s.scalars(stocks)).all() == [8, 8]


async def test_non_retryable_errors_are_raised_at_once_after_one_attempt(
    committed_db: Database,
) -> None:
    async with committed_db.session() as s:
        await UserRepository(s).create(username="taken", email="taken@x.org")
    calls = 0

    async def duplicate(s: DALSession) -> None:
        nonlocal calls
        calls += 1
        await UserRepository(s).create(username="fresh", email="fresh@x.org")
        await UserRepository(s).create(username="taken", email="other@x.org")

    with pytest.raises(DuplicateError) as info:
        await committed_db.transaction(duplicate, retries=5)
    assert calls == 1
    assert info.value.constraint == "uq_users_username"
    fresh = select(func.count()).select_from(User).where(User.username == "fresh")
    assert await _scalar(committed_db, fresh) == 0  # rolled back

    async def boom(s: DALSession) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("not a database problem")

    calls = 0
    with pytest.raises(ValueError, match="not a database problem"):
        await committed_db.transaction(boom)
    assert calls == 1


async def test_statement_timeout_is_not_retried(committed_db: Database) -> None:
    calls = 0

    async def slow(s: DALSession) -> None:
        nonlocal calls
        calls += 1
        await s.execute(text("SET LOCAL statement_timeout = '50ms'"))
        await s.execute(text("SELECT pg_sleep(5)"))

    with pytest.raises(QueryTimeoutError):
        await committed_db.transaction(slow, retries=3)
    assert calls == 1


async def test_raw_driver_errors_inside_fn_are_mapped(committed_db: Database) -> None:
    async def dup(s: DALSession) -> None:
        s.add_all([User(username="d", email="d1@x.org"), User(username="d", email="d2@x.org")])
        await s.flush()

    with pytest.raises(DuplicateError, match="uq_users_username"):
        await committed_db.transaction(dup)


async def test_success_commits_and_returns_the_result(committed_db: Database) -> None:
    calls = 0

    async def create(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        user = await UserRepository(s).create(username="tx", email="tx@x.org")
        return user.id

    user_id = await committed_db.transaction(create)
    assert calls == 1
    assert await _scalar(committed_db, select(User.username).where(User.id == user_id)) == "tx"


async def test_isolation_level_is_applied(committed_db: Database) -> None:
    async def level(s: DALSession) -> str:
        return str(await s.scalar(text("SHOW transaction_isolation")))

    assert await committed_db.transaction(level, isolation="SERIALIZABLE") == "serializable"
    assert await committed_db.transaction(level, isolation="repeatable read") == "repeatable read"
    assert await committed_db.transaction(level) == "read committed"
    # The pooled connection went back at the default level.
    async with committed_db.session() as s:
        assert await s.scalar(text("SHOW transaction_isolation")) == "read committed"


async def test_bad_arguments_are_configuration_errors(committed_db: Database) -> None:
    async def noop(s: DALSession) -> None:
        return None

    with pytest.raises(ConfigurationError, match="unknown isolation level 'AUTOCOMMIT'"):
        await committed_db.transaction(noop, isolation="AUTOCOMMIT")
    with pytest.raises(ConfigurationError, match="retries must be"):
        await committed_db.transaction(noop, retries=-1)


def test_backoff_grows_exponentially_with_jitter_and_a_ceiling() -> None:
    for attempt in range(1, 12):
        ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
        delays = {backoff_delay(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert backoff_delay(30) <= BACKOFF_MAX
