"""Markdown tables for the README from one or more result files of ``benchmarks/run.py``.

    python benchmarks/readme_tables.py docs/results/A.json docs/results/B.json

Per benchmark of the first file, a row per contender: the first run's median and spread, its
throughput, and the ratio of every run that has the benchmark (a re-run shows as min..max);
then the derived ratios and whether the target was met, run by run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _ratio_of(bench: dict[str, Any], name: str) -> float | None:
    for key, value in bench["ratios"].items():
        if key.startswith(f"{name} /"):
            return float(value)
    return None


TIMES = "\u00d7"  # the multiplication sign of the README's ratios


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    if abs(high - low) < 0.005:
        return f"{low:.2f}{TIMES}"
    return f"{low:.2f}..{high:.2f}{TIMES}"


def render(runs: list[dict[str, Any]]) -> str:
    """The tables of ``runs`` (parsed result files, same benchmarks) as markdown."""
    out: list[str] = []
    first = runs[0]
    for bench in first["benchmarks"]:
        # The same benchmark in every run that has it (a re-run may cover only some).
        others = [b for run in runs for b in run["benchmarks"] if b["id"] == bench["id"]]
        verdicts = ", ".join("met" if b["target_met"] else "missed" for b in others)
        out.append(f"**{bench['id']}: {bench['title']}** — target: {bench['target']} → {verdicts}")
        out.append("")
        out.append(f"| contender | median | min..max | {bench['unit']}/s | ratio (runs) |")
        out.append("|---|---:|---:|---:|---:|")
        for contender in bench["contenders"]:
            name = contender["name"]
            ratios = [r for r in (_ratio_of(b, name) for b in others) if r is not None]
            out.append(
                f"| {name} | {contender['median_s'] * 1e3:,.1f} ms | "
                f"{contender['min_s'] * 1e3:,.1f}..{contender['max_s'] * 1e3:,.1f} | "
                f"{contender['throughput_per_s']:,.0f} | {_span(ratios) if ratios else ''} |"
            )
        names = {c["name"] for c in bench["contenders"]}
        for key in bench["ratios"]:
            if not any(key.startswith(f"{name} /") for name in names):
                values = [float(b["ratios"][key]) for b in others if key in b["ratios"]]
                out.append(f"| *{key}* | | | | {_span(values)} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    """Print the tables of the files named on the command line."""
    runs = [json.loads(Path(name).read_text()) for name in sys.argv[1:]]
    if not runs:
        raise SystemExit("usage: readme_tables.py RESULT.json [MORE.json ...]")
    print(render(runs))


if __name__ == "__main__":
    main()
