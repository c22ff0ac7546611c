"""Cleanup watchdog for ``EmbeddedPostgres``: run as a script, never imported (stdlib only).

Usage: ``python -I _watchdog.py TEMP_DIR``. The parent keeps a pipe to our stdin open and
writes ``+PID`` / ``-PID`` lines for the process groups it starts and reaps (initdb, postgres).
EOF on stdin means the parent called ``stop()`` or died, even by SIGKILL (the kernel closes its end
of the pipe): we then kill whatever is still running and remove TEMP_DIR.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

TEMP_PREFIX = "asyncdal-pg-"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie counts as dead (its parent, our parent, may be gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs (macOS): assume alive, the timeouts below bound the wait
    return state != "Z"


def _postmaster_pid(data_dir: Path) -> set[int]:
    """The postmaster's pid from its lock file, in case the parent died before telling us."""
    try:
        return {int(data_dir.joinpath("postmaster.pid").read_text().split("\n", 1)[0])}
    except (OSError, ValueError):
        return set()


def main(argv: list[str]) -> int:
    """Wait for EOF on stdin, then stop the tracked process groups and remove the temp dir."""
    # A terminal Ctrl-C / hangup must not kill us before the cleanup is done.
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if len(argv) != 2 or not Path(argv[1]).name.startswith(TEMP_PREFIX):
        return 2  # refuse to delete anything that is not ours
    base = Path(argv[1])
    pids: set[int] = set()
    for raw in sys.stdin.buffer:  # blocks until the parent closes the pipe or dies
        line = raw.strip()
        with contextlib.suppress(ValueError):
            if line.startswith(b"+"):
                pids.add(int(line[1:]))
            elif line.startswith(b"-"):
                pids.discard(int(line[1:]))
    live = {pid for pid in pids | _postmaster_pid(base / "data") if _alive(pid)}
    # SIGQUIT is PostgreSQL's immediate shutdown (fine: the data is thrown away); then SIGKILL.
    for sig in (signal.SIGQUIT, signal.SIGKILL):
        for pid in live:
            with contextlib.suppress(OSError):
                os.killpg(pid, sig)  # started with start_new_session: pgid == pid
        deadline = time.monotonic() + 5
        while live and time.monotonic() < deadline:
            time.sleep(0.05)
            live = {pid for pid in live if _alive(pid)}
        if not live:
            break
    for _ in range(20):  # a dying initdb may still be writing into the directory
        shutil.rmtree(base, ignore_errors=True)
        if not base.exists():
            break
        time.sleep(0.25)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
