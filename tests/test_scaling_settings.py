"""Settings of the scaling features: replica URLs, replica_wait, pgbouncer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from asyncdal import ConfigurationError, Database, Settings
from asyncdal.social import Post, PostRepository

PRIMARY = "postgresql://app:s3cret@db1/app"


def test_replica_urls_from_the_environment_split_at_each_scheme() -> None:
    env = {
        "DATABASE_URL": PRIMARY,
        "ASYNCDAL_REPLICA_URLS": "postgres://app:s3cret@r1/app , postgresql://app@r2/app",
        "ASYNCDAL_REPLICA_WAIT": "0.25",
        "ASYNCDAL_PGBOUNCER": "true",
    }
    settings = Settings.from_env(env)
    assert [u.host for u in settings.replicas] == ["r1", "r2"]
    assert all(u.drivername == "postgresql+asyncpg" for u in settings.replicas)
    assert settings.replica_wait == 0.25
    assert settings.pgbouncer is True
    assert "s3cret" not in repr(settings)
    assert Settings.from_env({"DATABASE_URL": PRIMARY}).replicas == ()


def test_bad_scaling_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="list of URLs"):
        Settings.from_url(PRIMARY, replicas="postgresql://r1/app")
    with pytest.raises(ConfigurationError, match="scheme"):
        Settings.from_url(PRIMARY, replicas=["mysql://r1/app"])
    with pytest.raises(ConfigurationError, match="replica_wait"):
        Settings.from_url(PRIMARY, replica_wait=-1.0)
    with pytest.raises(ConfigurationError, match="PgBouncer"):
        Settings.from_url(PRIMARY, pgbouncer=True, statement_timeout=5.0)


SCALING = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"


async def test_the_docs_scaling_examples_configure_what_they_say() -> None:
    text = SCALING.read_text()
    section = text[text.index("## Three set-ups") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 3
    made = []
    for code in blocks:
        namespace: dict[str, Any] = {"Database": Database, "PostRepository": PostRepository}
        namespace["Post"] = Post
        exec(compile(code, "docs/scaling.md", "exec"), namespace)
        made.append(namespace["db"])
    replicated, bounced, failover = made
    try:
        assert [u.host for u in replicated.settings.replicas] == ["db-replica-1", "db-replica-2"]
        assert bounced.settings.pgbouncer is True
        assert failover.url.query["host"] == ("db1:5432", "db2:5432")
        assert failover.url.query["target_session_attrs"] == "read-write"
    finally:
        for db in made:
            await db.dispose()
