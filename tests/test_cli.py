"""The ``asyncdal`` command: success paths on the test database, and the errors a user can cause.

Errors end with one line on stderr, a non-zero status, no traceback and no password. The commands
run in-process through ``main(argv)`` (same code path as the console script, faster than a
subprocess); ``test_cli_interrupt.py`` covers Ctrl-C in a real subprocess.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from asyncdal import Database, head_revision
from asyncdal.cli import main

SECRET = "s3cr3t-pw"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *, status: int = 1) -> str:
    assert code == status
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("asyncdal: ")
    assert "Traceback" not in err
    assert SECRET not in err
    return lines[0]


@pytest.fixture
def no_env_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["migrate", "--no-such-option"], capsys)
    line = assert_one_line_error(code, err, status=2)
    assert "--no-such-option" in line


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["frobnicate"], capsys)
    assert "frobnicate" in assert_one_line_error(code, err, status=2)


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for command in ("demo", "migrate", "seed", "check"):
        assert command in out


def test_bad_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"mysql://app:{SECRET}@localhost/app"
    code, _, err = run(["migrate", "--database-url", url], capsys)
    assert "unsupported database URL scheme" in assert_one_line_error(code, err)


def test_unparsable_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://app:{SECRET}@host:notaport/db")
    code, _, err = run(["migrate"], capsys)
    assert "URL" in assert_one_line_error(code, err)


def test_server_down(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://app:{SECRET}@127.0.0.1:1/app"  # nothing listens on port 1
    code, _, err = run(["seed", "--database-url", url], capsys)
    line = assert_one_line_error(code, err)
    assert "cannot connect" in line or "unavailable" in line


def test_missing_database(capsys: pytest.CaptureFixture[str], migrated_url: str) -> None:
    url = make_url(migrated_url).set(password=SECRET, database="no_such_database_here")
    code, _, err = run(["migrate", "--database-url", url.render_as_string(False)], capsys)
    line = assert_one_line_error(code, err)
    assert "unavailable" in line
    assert "no_such_database_here" in line


def test_wrong_password_is_never_printed(
    capsys: pytest.CaptureFixture[str], migrated_url: str
) -> None:
    # The test server may trust every local connection (the embedded one does), so a wrong
    # password cannot always be provoked; an unknown role is refused either way.
    url = make_url(migrated_url).set(username="no_such_role_x", password=SECRET)
    code, _, err = run(["migrate", "--database-url", url.render_as_string(False)], capsys)
    line = assert_one_line_error(code, err)
    assert "unavailable" in line


def test_commands_need_a_url(capsys: pytest.CaptureFixture[str], no_env_url: None) -> None:
    for command in ("migrate", "seed"):
        code, _, err = run([command], capsys)
        assert "DATABASE_URL is not set" in assert_one_line_error(code, err)


def test_bad_scale(capsys: pytest.CaptureFixture[str], migrated_url: str) -> None:
    code, _, err = run(["seed", "--database-url", migrated_url, "--scale", "-1"], capsys)
    assert "--scale" in assert_one_line_error(code, err, status=2)


def test_migrate_reports_the_revision(
    capsys: pytest.CaptureFixture[str], migrated_url: str
) -> None:
    code, out, err = run(["migrate", "--database-url", migrated_url], capsys)
    assert (code, err) == (0, "")
    assert f"to revision {head_revision()}." in " ".join(out.split())


async def test_demo_then_rerun_skips_seeding(
    capsys: pytest.CaptureFixture[str],
    committed_db: Database,
    migrated_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    monkeypatch.setenv("DATABASE_URL", migrated_url)
    # main() runs its own event loop: call it from a thread, as a console script would run.
    code, out, err = await asyncio.to_thread(run, ["demo", "--scale", "0.01"], capsys)
    assert (code, err) == (0, ""), err
    assert "Seeded" in out
    for text in ("top users", "trending hashtags", "users", "products", "db.gather"):
        assert text in out
    assert "ConcurrentSessionUseError" in out
    assert "is still using the same session" in out
    assert "Demo finished." in out

    code, out, err = await asyncio.to_thread(run, ["demo", "--scale", "0.01"], capsys)
    assert (code, err) == (0, "")
    assert "Seeding skipped: the database already has data" in out
    assert "1,000 posts" in out  # not duplicated
