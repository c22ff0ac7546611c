"""db.transaction's retries: a budget in time, and a connection lost before COMMIT.

A backend killed (``pg_terminate_backend``) while ``fn`` runs loses nothing that was
committed, so ``fn`` runs again on a new connection. A backend killed while COMMIT runs (a
deferred constraint trigger keeps it busy) is not retried: whether it committed is unknown,
and the error says so. Conflicts retry for ``retry_for`` seconds, not a fixed count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import pytest
from sqlalchemy import func, select, text, update

from asyncdal import (
    ConcurrencyError,
    ConfigurationError,
    DALSession,
    Database,
    DatabaseUnavailableError,
)
from asyncdal._transaction import BACKOFF_MAX
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Product
from tests._backends import make_commit_slow
from tests._buyers import run_processes


async def _terminate(db: Database, pid: int) -> None:
    async with db.session() as s:
        assert await s.scalar(select(func.pg_terminate_backend(pid))) is True


async def _users(db: Database, name: str) -> int:
    async with db.session() as s:
        count = await s.scalar(select(func.count()).where(User.username == name))
        return int(count or 0)


async def test_a_backend_killed_while_fn_runs_is_retried_on_a_new_connection(
    committed_db: Database,
) -> None:
    pids: list[int] = []

    async def work(s: DALSession) -> int:
        pid = int(await s.scalar(select(func.pg_backend_pid())) or 0)
        pids.append(pid)
        await UserRepository(s).create(username="once", email="once@example.org")
        if len(pids) == 1:
            await _terminate(committed_db, pid)
        # The first attempt's connection is gone: this statement fails, nothing was committed.
        await s.execute(select(func.count()).select_from(User))
        return len(pids)

    before = committed_db.stats().transaction_retries_total
    assert await committed_db.transaction(work) == 2
    assert len(set(pids)) == 2  # the retry ran on another backend
    assert await _users(committed_db, "once") == 1
    assert committed_db.stats().transaction_retries_total == before + 1


async def test_a_backend_killed_during_commit_is_an_error_saying_the_outcome_is_unknown(
    committed_db: Database,
) -> None:
    runs = 0
    pid: list[int] = []

    async def slow_commit(s: DALSession) -> None:
        nonlocal runs
        runs += 1
        pid.append(int(await s.scalar(select(func.pg_backend_pid())) or 0))
        # A deferred constraint trigger runs at COMMIT: it keeps COMMIT busy for a while.
        await make_commit_slow(s, 30)
        await UserRepository(s).create(username="maybe", email="maybe@example.org")

    async def kill_when_committing() -> None:
        for _ in range(400):  # bounded: 20 s
            await asyncio.sleep(0.05)
            if not pid:
                continue
            async with committed_db.session() as s:
                query = await s.scalar(
                    select(text("query"))
                    .select_from(text("pg_stat_activity"))
                    .where(text("pid = :pid").bindparams(pid=pid[0]))
                )
            if isinstance(query, str) and query.upper().startswith("COMMIT"):
                await _terminate(committed_db, pid[0])
                return
        raise AssertionError("the transaction never reached COMMIT")

    killer = asyncio.create_task(kill_when_committing())
    with pytest.raises(DatabaseUnavailableError, match="outcome is unknown"):
        await committed_db.transaction(slow_commit)
    await killer
    assert runs == 1  # not run again: it may have committed


async def test_a_server_that_cannot_be_reached_is_not_retried(unused_tcp_port: int) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{unused_tcp_port}/nothing"
    async with Database.from_url(url) as db:
        runs = 0

        async def work(s: DALSession) -> None:
            nonlocal runs
            runs += 1
            await s.execute(select(1))

        with pytest.raises(DatabaseUnavailableError):
            await db.transaction(work)
        assert runs == 1
        assert db.stats().transaction_retries_total == 0


async def _conflicting(db: Database) -> tuple[int, list[float]]:
    async with db.session() as s:
        product = Product(sku="BUDGET", name="b", price=1, stock=10**6)
        s.add(product)
        await s.flush()
        product_id = product.id
    return product_id, []


async def test_conflicts_are_retried_until_the_time_budget_is_spent(committed_db: Database) -> None:
    product_id, starts = await _conflicting(committed_db)

    async def always_conflicts(s: DALSession) -> None:
        starts.append(time.monotonic())
        stock = await s.scalar(select(Product.stock).where(Product.id == product_id))
        async with committed_db.session() as other:
            await other.execute(
                update(Product).where(Product.id == product_id).values(stock=Product.stock - 1)
            )
        await s.execute(update(Product).where(Product.id == product_id).values(stock=stock))

    budget = 1.0
    with pytest.raises(ConcurrencyError, match=r"in 1s") as info:
        await committed_db.transaction(
            always_conflicts, isolation="REPEATABLE READ", retry_for=budget
        )
    gave_up = time.monotonic()
    assert info.value.attempts == len(starts) >= 2
    assert info.value.sqlstate == "40001"
    # No attempt started after the budget, and it gave up for time, not for a count: the next
    # backoff (at most BACKOFF_MAX) would have ended past the budget.
    assert starts[-1] - starts[0] <= budget
    assert gave_up - starts[0] >= budget - BACKOFF_MAX

    starts.clear()
    with pytest.raises(ConcurrencyError):
        await committed_db.transaction(always_conflicts, isolation="REPEATABLE READ", retry_for=0)
    assert len(starts) == 1
    starts.clear()
    with pytest.raises(ConcurrencyError) as capped:
        await committed_db.transaction(
            always_conflicts, isolation="REPEATABLE READ", retries=1, retry_for=60
        )
    assert capped.value.attempts == len(starts) == 2


@pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "1", True, None])
async def test_retry_for_must_be_finite_seconds(committed_db: Database, bad: object) -> None:
    async def noop(s: DALSession) -> None:
        raise AssertionError("not run")

    with pytest.raises(ConfigurationError, match="retry_for"):
        await committed_db.transaction(noop, retry_for=bad)  # type: ignore[arg-type]


PROCESSES = 4
BUYERS = 75
STOCK = 20


async def contend(
    db: Database, url: str, retries: int | None = None, retry_for: float | None = None
) -> tuple[Counter[str], float]:
    """Run PROCESSES x BUYERS buyers of a STOCK-unit product; their outcomes, the longest wall."""
    async with db.session() as s:
        product = Product(sku="HOT", name="hot", price=1, stock=STOCK)
        users = [
            User(username=f"buyer{i}", email=f"buyer{i}@example.org")
            for i in range(PROCESSES * BUYERS)
        ]
        s.add(product)
        s.add_all(users)
        await s.flush()
        product_id, first = product.id, min(u.id for u in users)
    firsts = [first + p * BUYERS for p in range(PROCESSES)]
    totals, walls = await run_processes(
        url, product_id, firsts, BUYERS, retries=retries, retry_for=retry_for, finish_within=300
    )
    wall = max(walls)
    async with db.session() as s:
        assert await s.scalar(select(Product.stock).where(Product.id == product_id)) == 0
    return totals, wall


async def test_serializable_contention_from_several_processes_reaches_the_domains_answer(
    committed_db: Database, migrated_url: str
) -> None:
    """4 processes x 75 buyers of a 20-unit product: 20 orders, 280 sold out, 0 conflicts."""
    # A budget far above what it takes (a few seconds), so a loaded machine cannot fail it.
    totals, _ = await contend(committed_db, migrated_url, retry_for=120)
    assert dict(totals) == {"placed": STOCK, "sold out": PROCESSES * BUYERS - STOCK}
