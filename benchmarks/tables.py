"""The benchmark tables of docs/benchmarks.md, from one or more result files of ``run.py``.

    python benchmarks/tables.py docs/results/A.json [B.json ...]          # print
    python benchmarks/tables.py --write docs/benchmarks.md A.json [B.json ...]  # replace

Per benchmark of the first file, a row per contender: the first run's median and spread, its
throughput, and the ratio of every run that has the benchmark (a re-run shows as min..max);
then the derived ratios and whether the target was met, run by run; each table's caption says
what every contender shares (pool settings, command_timeout) and the run's load average.
``--write`` replaces what lies between ``<!-- bench:tables:start -->`` and
``<!-- bench:tables:end -->`` in the file and leaves the rest (the prose) alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

START, END = "<!-- bench:tables:start -->", "<!-- bench:tables:end -->"
TIMES = "\u00d7"  # the multiplication sign of the docs' ratios


def _ratio_of(bench: dict[str, Any], name: str) -> float | None:
    for key, value in bench["ratios"].items():
        if key.startswith(f"{name} /"):
            return float(value)
    return None


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    if abs(high - low) < 0.005:
        return f"{low:.2f}{TIMES}"
    return f"{low:.2f}..{high:.2f}{TIMES}"


def _load(run: dict[str, Any]) -> str:
    load = run.get("load_average")
    if not load:
        return "load average not recorded"
    return f"load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end"


def render(runs: list[dict[str, Any]]) -> str:
    """The tables of ``runs`` (parsed result files, same benchmarks) as markdown."""
    out: list[str] = []
    first = runs[0]
    loads = "; ".join(f"run {n}: {_load(run)}" for n, run in enumerate(runs, 1))
    for bench in first["benchmarks"]:
        # The same benchmark in every run that has it (a re-run may cover only some).
        others = [b for run in runs for b in run["benchmarks"] if b["id"] == bench["id"]]
        judged = [b for b in others if b["target_met"] is not None]
        verdicts = ", ".join("met" if b["target_met"] else "missed" for b in judged)
        target = f" — target: {bench['target']} → {verdicts}" if judged else ""
        out.append(f"**{bench['id']}: {bench['title']}**{target}")
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
        notes = [n for n in bench.get("notes", []) if n]
        out.append(f"*{' '.join(notes)} {loads[0].upper()}{loads[1:]}.*")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def replace_region(document: str, tables: str) -> str:
    """``document`` with its generated region (between the markers) replaced by ``tables``."""
    start, end = document.find(START), document.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"no {START} ... {END} region to replace")
    return f"{document[: start + len(START)]}\n{tables}{document[end:]}"


def main(argv: list[str] | None = None) -> None:
    """Print the tables of the files named on the command line, or write them into a file."""
    parser = argparse.ArgumentParser(
        prog="benchmarks/tables.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--write", type=Path, help="replace the generated region of this file")
    parser.add_argument("results", nargs="+", type=Path, help="result files of run.py")
    args = parser.parse_args(argv)
    runs = [json.loads(path.read_text()) for path in args.results]
    tables = render(runs)
    if args.write is None:
        print(tables)
        return
    args.write.write_text(replace_region(args.write.read_text(), tables))


if __name__ == "__main__":
    main()
