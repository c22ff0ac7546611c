"""A delaying TCP proxy in a process of its own (``tests/_proxy.py``'s, run as a module).

In its own process, the proxy's work (and its event loop's timers) competes with neither the
client's event loop nor its CPU time accounting: what B5 measures is a client talking to a
server ``2 * delay`` away, not a client that also forwards bytes.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

__all__ = ["delayed_url"]

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def delayed_url(url: str, delay: float, *, lifetime: float = 3600.0) -> AsyncIterator[str]:
    """``url`` rewritten to reach its server through a proxy adding ``delay`` s each way.

    The proxy process is ended when the block ends (and ends itself after ``lifetime``).
    """
    parsed = make_url(url)
    host = parsed.host or "127.0.0.1"
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError(f"the delaying proxy forwards to this machine only, not {host!r}")
    argv = [sys.executable, "-m", "tests._proxy", host, str(parsed.port or 5432)]
    argv += ["--delay", repr(delay), "--lifetime", repr(lifetime)]
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
        if not line.strip().isdigit():
            assert process.stderr is not None
            error = (await process.stderr.read()).decode(errors="replace")
            raise RuntimeError(f"the delaying proxy did not start: {error.strip()[-500:]}")
        port = int(line)
        yield parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
