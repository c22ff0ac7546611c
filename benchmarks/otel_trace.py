"""Print the trace of one social dashboard as a text tree (README "Observability").

    python benchmarks/otel_trace.py [--scale 0.05]

Starts a throwaway PostgreSQL server (or uses DATABASE_URL, which must be an empty database it
may migrate and fill), loads the demo dataset at ``--scale``, instruments the database with the
SDK's in-memory exporter, loads ``SocialDashboard`` once to warm up and once traced, and prints
the spans as a tree: name, duration, and the attributes (statement spans show their operation
and text, shortened).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections import defaultdict
from contextlib import ExitStack

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from asyncdal import Database, upgrade
from asyncdal.otel import instrument
from asyncdal.social import SocialDashboard
from asyncdal.testing import EmbeddedPostgres, load_dataset

# Shown as they are; the rest (server, database) is said once at the top.
_SHOWN = ("asyncdal.", "db.operation", "db.statement", "db.query.text", "error.type")
_WIDTH = 60


def _line(span: ReadableSpan, depth: int, origin: int) -> str:
    start = ((span.start_time or 0) - origin) / 1e6
    took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    attrs = []
    for key, value in sorted((span.attributes or {}).items()):
        if not key.startswith(_SHOWN):
            continue
        text = " ".join(str(value).split())
        if isinstance(value, float):
            text = f"{value * 1000:.1f}ms" if key.endswith("_s") else f"{value:.3f}"
        if len(text) > _WIDTH:
            text = text[: _WIDTH - 3] + "..."
        attrs.append(f"{key}={text}")
    events = [f"event:{e.name}" for e in span.events]
    details = "  ".join([*attrs, *events])
    return f"{'  ' * depth}{span.name}  [+{start:.1f} ms, {took:.1f} ms]  {details}".rstrip()


def render(spans: list[ReadableSpan]) -> str:
    """The spans of one trace as an indented tree, children in start order."""
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children[parent].append(span)
    roots = children[None]
    origin = min(s.start_time or 0 for s in spans)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        lines.append(_line(span, depth, origin))
        assert span.context is not None
        for child in sorted(children[span.context.span_id], key=lambda s: s.start_time or 0):
            walk(child, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_time or 0):
        walk(root, 0)
    return "\n".join(lines)


async def main(scale: float, url: str) -> None:
    """Seed, warm up, trace one dashboard and print its tree."""
    db = Database.from_url(url)
    try:
        await upgrade(db)
        await load_dataset(db, scale)
        await SocialDashboard.load(db, top=5)  # warm: connections open, statements cached
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        instrumentation = instrument(db, tracer_provider=provider)
        await SocialDashboard.load(db, top=5)
        instrumentation.uninstrument()
        spans = list(exporter.get_finished_spans())
        [gather] = [s for s in spans if s.name == "asyncdal.gather"]
        first = dict(gather.attributes or {})
        where = ", ".join(
            f"{k}={first[k]}" for k in ("db.system", "db.namespace", "server.address") if k in first
        )
        print(f"# SocialDashboard.load(db, top=5): {len(spans)} spans; the layer's carry {where}")
        print(render(spans))
    finally:
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = os.environ.get("DATABASE_URL") or stack.enter_context(EmbeddedPostgres()).url
        asyncio.run(main(args.scale, url))
