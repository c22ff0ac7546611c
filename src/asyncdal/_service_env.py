"""What a service's own Alembic ``env.py`` needs from asyncdal (public: :mod:`asyncdal.alembic`)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.engine import URL

from asyncdal._urls import normalize_url

__all__ = ["async_url", "target_metadata"]


def async_url(url: str | URL) -> URL:
    """The SQLAlchemy URL for asyncpg of ``url``, for a service's ``create_async_engine``.

    Accepts what :meth:`asyncdal.Database.from_url` accepts: ``postgresql://`` and
    ``postgres://`` (libpq's forms, as platforms hand them out, multi-host included) and
    ``postgresql+asyncpg://``; libpq parameters the layer does not know, and any other driver,
    raise :class:`asyncdal.ConfigurationError`. The result is a :class:`sqlalchemy.engine.URL`:
    its ``str()`` and ``repr()`` mask the password, the engine still gets it::

        engine = create_async_engine(async_url(os.environ["DATABASE_URL"]), poolclass=NullPool)
    """
    return normalize_url(url)


def target_metadata() -> MetaData:
    """``asyncdal.Base.metadata`` with every table of asyncdal's own registered on it.

    A service's models that subclass :class:`asyncdal.Base` and have a foreign key to one of
    asyncdal's tables (``users.id``, ``orders.id``...) need those tables on the same metadata,
    or autogenerate fails with ``NoReferencedTableError``. Pass this as ``target_metadata`` in
    the service's ``env.py``, with :func:`exclude_asyncdal` as ``include_object`` so that only
    the service's tables are compared. Import the service's models too: they register
    themselves on the same metadata when their module is imported.
    """
    from asyncdal._schema import Base  # imports accounts, social and commerce: their tables

    return Base.metadata
