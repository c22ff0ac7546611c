"""What ``asyncdal demo`` shows a new user: the seeds' programs, done right, on real data.

1. migrate and seed (progress bar; skipped when the database already has data);
2. the seed 002 dashboard and the seed 000 "all" view, each run sequentially in one session and
   then with ``db.gather`` (a session per read), as tables, with the two timings side by side;
3. the seed 003 mistake (two tasks on one session) caught, with the library's explanation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import func, select

from asyncdal._database import Database
from asyncdal._errors import ConcurrentSessionUseError
from asyncdal._migrate import current_revision, upgrade
from asyncdal.accounts import User
from asyncdal.commerce import StorefrontOverview
from asyncdal.social import Post, SocialDashboard
from asyncdal.testing import LoadResult, load_dataset, table_counts

__all__ = ["migrate_and_seed", "render", "run_demo", "timed"]

T = TypeVar("T")

#: Timed runs of each way in the demo; the median is shown.
_RUNS = 5


async def migrate_and_seed(
    db: Database, console: Console, *, scale: float = 1.0, random_seed: int = 42
) -> LoadResult:
    """Upgrade ``db`` to head and seed it (with a progress bar), or say why it was skipped."""
    with console.status("Migrating the schema to head…"):
        await upgrade(db)
    console.print(f"Schema at revision {await current_revision(db)}.")
    columns = (
        TextColumn("Seeding {task.description:<14}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    counts = await table_counts(db)
    if any(counts.values()):
        # Nothing to write: no progress bar, just say so (load_dataset() checks again, atomically).
        console.print(f"Seeding skipped: the database already has data ({_summary(counts)}).")
        return LoadResult(True, counts, "the database already has data")
    console.print(f"Seeding the demo dataset (scale {scale:g}, random seed {random_seed})…")
    started = time.perf_counter()
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("(generating)", total=None)

        def report(table: str, done: int, total: int) -> None:
            progress.update(task, description=table, completed=done, total=total)

        result = await load_dataset(db, scale, random_seed=random_seed, progress=report)
    if result.skipped:
        console.print(f"Seeding skipped: {result.reason}.")
    else:
        rows = sum(result.counts.values())
        seconds = time.perf_counter() - started
        console.print(
            f"Seeded {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s): "
            + _summary(result.counts)
        )
    return result


def _summary(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n:,} {name}" for name, n in counts.items())


async def timed(fn: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """``(await fn(), seconds it took)``."""
    started = time.perf_counter()
    result = await fn()
    return result, time.perf_counter() - started


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, Enum):
        return str(value.value)
    return "" if value is None else str(value)


def _as_mapping(row: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}
    if isinstance(row, Mapping):
        return row
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    if hasattr(row, "__table__"):  # an ORM object: its column attributes
        return {c.key: getattr(row, c.key) for c in row.__table__.columns}
    return {"value": row}


def render(title: str, rows: Any, *, limit: int = 5) -> Table:
    """A rich table of ``rows`` (dataclasses, mappings, named tuples or ORM objects)."""
    items = list(rows) if isinstance(rows, Iterable) and not isinstance(rows, str) else [rows]
    if len(items) == 1 and not isinstance(rows, list | tuple):
        # One record (e.g. platform stats): show it as field / value pairs.
        table = Table(title=title, title_justify="left")
        table.add_column("field")
        table.add_column("value", justify="right")
        for key, value in _as_mapping(items[0]).items():
            table.add_row(key, _cell(value))
        return table
    table = Table(title=f"{title} ({len(items)} rows)", title_justify="left")
    mappings = [_as_mapping(item) for item in items[:limit]]
    keys = list(mappings[0]) if mappings else []
    for key in keys:
        table.add_column(key, justify="right" if _numeric(mappings[0][key]) else "left")
    for mapping in mappings:
        table.add_row(*(_cell(mapping.get(key)) for key in keys))
    if len(items) > limit:
        table.caption = f"… {len(items) - limit} more"
    return table


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _fields(result: Any) -> list[tuple[str, Any]]:
    """The named parts of a dashboard/overview result (a dataclass or a tuple)."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return [(f.name, getattr(result, f.name)) for f in dataclasses.fields(result)]
    if hasattr(result, "_asdict"):
        return list(result._asdict().items())
    if isinstance(result, Mapping):
        return list(result.items())
    return [(f"part {i + 1}", part) for i, part in enumerate(result)]


def _timings(title: str, sequential: float, gathered: float, reads: int) -> Table:
    table = Table(title=title, title_justify="left", caption_justify="left")
    table.add_column("how")
    table.add_column(f"median of {_RUNS}", justify="right")
    table.add_column("relative", justify="right")
    table.add_row(f"sequential, one session ({reads} reads)", f"{sequential * 1e3:.1f} ms", "1.00x")
    table.add_row(
        f"db.gather ({reads} sessions at once)",
        f"{gathered * 1e3:.1f} ms",
        f"{gathered / sequential:.2f}x",
    )
    if gathered < sequential:
        table.caption = f"db.gather was {sequential / gathered:.1f}x faster."
    else:
        # The usual reason on a small machine: the reads compete for the same server CPUs.
        table.caption = (
            f"db.gather was no faster here: {os.cpu_count()} CPU cores, and the reads are "
            "short or CPU-bound on the server, so they compete rather than overlap. "
            "Fan-out pays when reads wait: I/O, locks, network latency (docs/benchmarks.md, B1)."
        )
    return table


async def _compare(
    console: Console,
    title: str,
    sequential: Callable[[], Awaitable[Any]],
    gathered: Callable[[], Awaitable[Any]],
    reads: int,
) -> None:
    """Warm both up, time each (median of interleaved runs), print results and timings."""
    await sequential()
    result = await gathered()
    seq_times, gather_times = [], []
    for _ in range(_RUNS):
        seq_times.append((await timed(sequential))[1])
        gather_times.append((await timed(gathered))[1])
    seq_seconds, gather_seconds = statistics.median(seq_times), statistics.median(gather_times)
    console.rule(title)
    for name, part in _fields(result):
        console.print(render(name.replace("_", " "), part))
    console.print(_timings(f"{title}: timings", seq_seconds, gather_seconds, reads))


async def _one_by_one(db: Database, reads: Iterable[Callable[[Any], Awaitable[Any]]]) -> list[Any]:
    """The sequential contender: the same reads, one after another on one session."""
    async with db.session() as session:
        return [await read(session) for read in reads]


async def show_dashboards(db: Database, console: Console) -> None:
    """Seed 002's dashboard and seed 000's "all" view: sequential vs ``db.gather``."""

    async def dashboard_sequential() -> SocialDashboard:
        return SocialDashboard(*await _one_by_one(db, SocialDashboard.reads()))

    async def overview_sequential() -> StorefrontOverview:
        return StorefrontOverview(*await _one_by_one(db, StorefrontOverview.reads()))

    await _compare(
        console,
        "Seed 002: the social dashboard",
        dashboard_sequential,
        lambda: SocialDashboard.load(db),
        reads=3,
    )
    await _compare(
        console,
        'Seed 000: the storefront "all" view',
        overview_sequential,
        lambda: StorefrontOverview.load(db),
        reads=3,
    )


async def show_shared_session_mistake(db: Database, console: Console) -> str:
    """Seed 003's mistake, two tasks on one session, caught; returns the library's message."""
    console.rule("Seed 003: two tasks sharing one session")
    console.print(
        "The seed runs `create_task(session.execute(...))` twice on ONE session. "
        "asyncdal's session notices the second task:"
    )
    outcome: Sequence[object] = ()
    # Leaving the block raises the error once more (the unit of work is not committed).
    with contextlib.suppress(ConcurrentSessionUseError):
        async with db.session() as session:
            first = asyncio.create_task(session.execute(select(func.count()).select_from(User)))
            second = asyncio.create_task(session.execute(select(func.count()).select_from(Post)))
            outcome = await asyncio.gather(first, second, return_exceptions=True)
    errors = [o for o in outcome if isinstance(o, BaseException)]
    caught = [e for e in errors if isinstance(e, ConcurrentSessionUseError)]
    if not caught:
        message = f"not caught! outcome: {outcome!r}"
        console.print(f"[red]{message}[/red]")
        return message
    message = str(caught[0])
    console.print(f"[bold]ConcurrentSessionUseError[/bold]: {message}")
    console.print("The fix: `await db.gather(...)` gives every concurrent read its own session.")
    return message


async def run_demo(db: Database, console: Console, *, scale: float = 1.0) -> None:
    """The whole demo on ``db``: migrate, seed, dashboards, and the shared-session mistake."""
    await migrate_and_seed(db, console, scale=scale)
    await show_dashboards(db, console)
    await show_shared_session_mistake(db, console)
    console.print("[green]Demo finished.[/green]")
