"""The benchmark results as a rich table and as JSON."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.harness import Outcome

__all__ = ["machine", "outcome_table", "write_json"]


def machine(server_version: str) -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlalchemy": version("sqlalchemy"),
        "asyncpg": version("asyncpg"),
        "postgresql": server_version,
    }


def outcome_table(outcome: Outcome) -> Table:
    """One benchmark: a row per contender, median and spread, throughput and ratio."""
    verdict = {True: "[green]met[/green]", False: "[red]missed[/red]", None: "n/a"}
    table = Table(
        title=f"{outcome.id}: {outcome.title}",
        title_justify="left",
        caption=f"target: {outcome.target} -> {verdict[outcome.target_met]}",
        caption_justify="left",
    )
    for name, justify in (
        ("contender", "left"),
        ("median", "right"),
        ("min..max", "right"),
        (f"{outcome.unit}/s", "right"),
        ("ratio", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for stats in outcome.stats:
        low, high = stats.spread
        ratio = next(
            (v for k, v in outcome.ratios.items() if k.startswith(f"{stats.name} /")), None
        )
        table.add_row(
            stats.name,
            f"{stats.median * 1e3:,.1f} ms",
            f"{low * 1e3:,.1f}..{high * 1e3:,.1f}",
            f"{stats.throughput:,.0f}",
            "" if ratio is None else f"{ratio:.2f}x",
        )
    for key, value in outcome.ratios.items():
        if not any(key.startswith(f"{s.name} /") for s in outcome.stats):
            table.add_row(f"[italic]{key}[/italic]", "", "", "", f"{value:.2f}x")
    return table


def write_json(
    path: Path, *, profile: str, repeats: int, info: dict[str, Any], outcomes: list[Outcome]
) -> Path:
    """Write the results to ``path`` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": profile,
        "repeats": repeats,
        **info,
        "benchmarks": [o.as_json() for o in outcomes],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
