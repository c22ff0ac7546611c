"""The ``asyncdal`` command: success paths on the test database, and the errors a user can cause.

Errors end with one line on stderr, a non-zero status, no traceback and no password. The commands
run in-process through ``main(argv)`` (same code path as the console script, faster than a
subprocess); ``test_cli_interrupt.py`` covers Ctrl-C in a real subprocess.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from asyncdal import AuthenticationError, Database, DatabaseUnavailableError, head_revision
from asyncdal._error_mapping import translate_error
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
    assert "database does not exist" in line
    assert "no_such_database_here" in line
    assert "authentication" not in line


def test_unknown_role_is_an_authentication_failure(
    capsys: pytest.CaptureFixture[str], migrated_url: str
) -> None:
    # The test server may trust every local connection (the embedded one does), so a wrong
    # password cannot always be provoked; an unknown role is refused either way (28000).
    url = make_url(migrated_url).set(username="no_such_role_x", password=SECRET)
    code, _, err = run(["migrate", "--database-url", url.render_as_string(False)], capsys)
    line = assert_one_line_error(code, err)
    assert "authentication failed" in line
    assert "no_such_role_x" in line  # the server's own words name the role


def test_a_wrong_password_maps_to_authentication_error() -> None:
    refused = asyncpg.InvalidPasswordError('password authentication failed for user "app"')
    mapped = translate_error(refused)
    assert isinstance(mapped, AuthenticationError)
    assert isinstance(mapped, DatabaseUnavailableError)  # still "the database is unusable"
    assert "28P01" in str(mapped)


def test_commands_need_a_url(capsys: pytest.CaptureFixture[str], no_env_url: None) -> None:
    for command in ("migrate", "seed"):
        code, _, err = run([command], capsys)
        assert "DATABASE_URL is not set" in assert_one_line_error(code, err)


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "1e9"])
def test_bad_scale(capsys: pytest.CaptureFixture[str], migrated_url: str, value: str) -> None:
    code, _, err = run(["seed", "--database-url", migrated_url, "--scale", value], capsys)
    line = assert_one_line_error(code, err, status=2)
    assert "--scale" in line
    assert repr(float(value)) in line  # the message quotes what was given
    assert "from 0.0001 to 100" in line


def test_migrate_says_what_happened(
    capsys: pytest.CaptureFixture[str], empty_database_url: str
) -> None:
    head = head_revision()
    assert head is not None
    code, out, err = run(["migrate", "--database-url", empty_database_url], capsys)
    assert (code, err) == (0, "")
    # Not a terminal: one line, not hard-wrapped at 80 columns (this one is longer).
    (line,) = out.splitlines()
    assert len(line) > 80
    assert line.endswith(f"from revision base to {head}.")

    code, out, err = run(["migrate", "--database-url", empty_database_url], capsys)
    assert (code, err) == (0, "")
    assert f"is already at revision {head}: nothing to do." in " ".join(out.split())

    # A target below the current revision: upgrading does nothing, and says so with status 1
    # (a deploy script must not read "done"), pointing at downgrade.
    for target in ("base", "0001"):
        code, out, err = run(
            ["migrate", "--database-url", empty_database_url, "--revision", target], capsys
        )
        line = assert_one_line_error(code, err)
        assert f"is at revision {head}, above the target {target!r}" in line
        assert "only upgrades" in line
        assert f"asyncdal.downgrade(db, {target!r})" in line
        assert out == ""

    # The target it is already at: nothing to do, status 0.
    code, out, err = run(
        ["migrate", "--database-url", empty_database_url, "--revision", head], capsys
    )
    assert (code, err) == (0, "")
    assert f"is already at revision {head}: nothing to do." in " ".join(out.split())


def test_migrate_to_an_unknown_revision(
    capsys: pytest.CaptureFixture[str], migrated_url: str
) -> None:
    code, _, err = run(
        ["migrate", "--database-url", migrated_url, "--revision", "no_such_rev"], capsys
    )
    line = assert_one_line_error(code, err)
    assert "unknown revision" in line
    assert "no_such_rev" in line
    assert "unexpected" not in line


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
