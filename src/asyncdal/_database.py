"""The :class:`Database`: one engine, one session factory, and the ways to use them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from asyncdal._config import Settings, mask_url
from asyncdal._error_mapping import wrap_errors
from asyncdal._session import DALSession

__all__ = ["Database"]


class Database:
    """The entry point: owns the engine (and its connection pool) and the session factory.

    Create one per process and share it; it is safe to use from many tasks at once. Every
    session it hands out belongs to one task.

    Example::

        async with Database.from_url("postgresql+asyncpg://app@localhost/app") as db:
            async with db.session() as session:
                session.add(User(username="ada", email="ada@example.org"))
    """

    def __init__(self, settings: Settings) -> None:
        """Build the engine and session factory from ``settings``; nothing connects yet."""
        self.settings = settings
        server_settings = {"application_name": settings.application_name}
        if settings.statement_timeout is not None:
            server_settings["statement_timeout"] = str(int(settings.statement_timeout * 1000))
        self.engine: AsyncEngine = create_async_engine(
            settings.url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
            pool_pre_ping=settings.pool_pre_ping,
            echo=settings.echo,
            hide_parameters=True,
            connect_args={
                "server_settings": server_settings,
                "timeout": settings.connect_timeout,
            },
        )
        self.sessionmaker: async_sessionmaker[DALSession] = async_sessionmaker(
            self.engine, class_=DALSession, expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str | URL, **options: Any) -> Self:
        """A database for ``url``; ``options`` are :class:`Settings` fields (``pool_size``...)."""
        return cls(Settings(url=url, **options))  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, **overrides: Any) -> Self:
        """A database configured from ``DATABASE_URL`` and ``ASYNCDAL_*`` variables.

        See :meth:`Settings.from_env` for the variables; ``overrides`` win over them.
        """
        return cls(Settings.from_env(**overrides))

    @property
    def url(self) -> URL:
        """The database URL. Its ``str()`` and ``repr()`` mask the password."""
        return self.settings.url

    @asynccontextmanager
    async def session(self) -> AsyncIterator[DALSession]:
        """A unit of work: commits when the block ends, rolls back if it raises.

        The session is always closed and its connection returned to the pool, also when the
        block is cancelled. Driver errors raised in the block become the layer's exceptions
        (:class:`DuplicateError`, :class:`DatabaseUnavailableError`...).
        """
        # AsyncSession.__aexit__ closes the session shielded from cancellation; closing
        # without a commit rolls the transaction back.
        async with self.sessionmaker() as session:
            with wrap_errors():
                yield session
                await session.commit()

    async def dispose(self) -> None:
        """Close every pooled connection. The database can still be used afterwards."""
        await self.engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    def __repr__(self) -> str:
        return f"<Database {mask_url(self.url)} pool_size={self.settings.pool_size}>"
