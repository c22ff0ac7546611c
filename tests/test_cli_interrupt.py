"""Ctrl-C during ``asyncdal demo`` on the embedded server: exit 130, one line, nothing left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asyncdal.testing._embedded import find_bin_dir

try:
    find_bin_dir()
    HAVE_BINARIES = True
except Exception:
    HAVE_BINARIES = False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not HAVE_BINARIES, reason="no PostgreSQL server binaries")
@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to list processes")
def test_ctrl_c_during_seeding_leaves_nothing_behind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    env["COLUMNS"] = "300"  # one line per message: the data dir path is not wrapped
    proc = subprocess.Popen(
        [sys.executable, "-c", "from asyncdal.cli import main; main()", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    temp_dir: str | None = None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            match = re.search(r"data in (\S+)", line)
            if match:
                temp_dir = match.group(1)
            if line.startswith("Seeding the demo dataset"):
                time.sleep(0.5)  # inside generation/COPY of the default (100k posts) dataset
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(seen) + out + err
    assert temp_dir is not None, output
    assert proc.returncode == 130, output
    assert "Traceback" not in output
    assert err.strip().splitlines() == ["asyncdal: interrupted; nothing was left running"]
    assert not Path(temp_dir).exists(), f"{temp_dir} left behind"
    assert _processes_mentioning(temp_dir) == [], "a server process is still running"


# Ctrl-C while the command is still importing (asyncdal itself, then typer and rich): most of
# the first second. A finder that raises KeyboardInterrupt when the named module is imported
# puts the interrupt exactly there, every run (a timed SIGINT would race the import).
_INTERRUPT_ON_IMPORT = """
import sys

INTERRUPTED_AT = sys.argv[1]

class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == INTERRUPTED_AT:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, Interrupt())
sys.argv[1:] = ["migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/x"]
import _asyncdal_cli
_asyncdal_cli.main()
"""


@pytest.mark.parametrize("module", ["sqlalchemy", "asyncdal._database", "typer", "rich.console"])
def test_ctrl_c_while_the_command_starts_is_one_line(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _INTERRUPT_ON_IMPORT, module],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "asyncdal: interrupted; nothing was left running\n"
    assert done.stdout == ""


def test_the_console_script_is_the_quiet_entry_point() -> None:
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="asyncdal")
    assert script.value == "_asyncdal_cli:main"
