"""The layer's exceptions as HTTP responses: :func:`install_error_handlers`.

Every error body has the same shape, ``{"error": <code>, "detail": <message>}``, plus fields
that help the client act (the short product of an order). Only messages the layer writes for
callers reach a client: an unexpected exception becomes a generic 500 and is logged here, so
no stack trace, SQL text or driver message ever leaves the service.

==============================  ======  ===================================================
exception                       status  why
==============================  ======  ===================================================
``RequestValidationError``      422     a parameter or body failed pydantic validation
``InvalidQueryError``           422     an unknown filter field, operator or sort key, or a
                                        bad cursor: the message names what is allowed
``NotFoundError``               404
``StaleWriteError``             412     the ``If-Match`` version is not the row's any more;
                                        ``current_version`` and an ``ETag`` say what it is
``ConflictError`` (duplicate,   409     ``"error"`` is the class's ``code`` (``duplicate``,
FK, check, a domain's own)              ``insufficient_stock``...), plus its
                                        ``public_fields`` (the violated ``constraint``;
                                        the short ``product_id``, ``requested``,
                                        ``available`` of an order)
``DatabaseUnavailableError``    503     with ``Retry-After``: the pool or server is gone
``ConcurrencyError``            503     with ``Retry-After``: retries of a serialization
                                        failure ran out; the request may succeed again
``QueryTimeoutError``           504     the database answered too slowly (an upstream
                                        timeout, distinct from "down")
any other ``AsyncDALError``     500     generic message; the exception is logged
any other ``Exception``         500     generic message; the exception is logged
==============================  ======  ===================================================
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from asyncdal import (
    AsyncDALError,
    ConcurrencyError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidQueryError,
    NotFoundError,
    QueryTimeoutError,
    StaleWriteError,
)

__all__ = ["INTERNAL_ERROR_MESSAGE", "etag", "install_error_handlers"]

logger = logging.getLogger("asyncdal.fastapi")

INTERNAL_ERROR_MESSAGE = "internal error: the request could not be completed"
#: Seconds a client should wait before retrying a 503.
RETRY_AFTER = "1"


def etag(version: int) -> str:
    """The ``ETag`` of a row at ``version`` (a strong tag: ``If-Match`` compares it exactly)."""
    return f'"{version}"'


def _body(status: int, error: str, detail: object, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Location, message and type only: pydantic's "input" and "ctx" would echo the request
    # back, and "url" is noise for an API client.
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return _body(422, "invalid_request", errors)


async def _layer_error(_: Request, exc: Exception) -> JSONResponse:
    # Most specific first: StaleWriteError is a ConflictError.
    if isinstance(exc, InvalidQueryError):
        return _body(422, "invalid_query", str(exc))
    if isinstance(exc, NotFoundError):
        # The model only: the key is the request's own input, and a body never echoes input.
        return _body(404, "not_found", f"{exc.model} not found")
    if isinstance(exc, StaleWriteError):
        response = _body(412, "precondition_failed", str(exc), current_version=exc.current_version)
        if exc.current_version is not None:
            response.headers["ETag"] = etag(exc.current_version)
        return response
    if isinstance(exc, ConflictError):
        return _body(409, exc.code, str(exc), **exc.public_fields)
    if isinstance(exc, DatabaseUnavailableError | ConcurrencyError):
        logger.warning("database unavailable: %s", exc)
        response = _body(503, "unavailable", "the database is unavailable; retry later")
        response.headers["Retry-After"] = RETRY_AFTER
        return response
    if isinstance(exc, QueryTimeoutError):
        logger.warning("query timeout: %s", exc)
        return _body(504, "timeout", "the database did not answer in time")
    return await _unexpected_error(_, exc)


async def _unexpected_error(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, AsyncDALError):
        # The layer's message names what failed; the driver's exception chained under it may
        # quote a value or a row (PostgreSQL's DETAIL), so its traceback is not logged here.
        logger.error(
            "unhandled database error: %s: %s (SQLSTATE %s)",
            type(exc).__name__,
            exc,
            getattr(exc, "sqlstate", None),
        )
    else:
        logger.error("unhandled error", exc_info=exc)
    return _body(500, "internal_error", INTERNAL_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    """Map the error tree to HTTP responses on ``app`` (the table in this module's docstring).

    Also replaces FastAPI's 422 body for invalid requests with the same ``{"error", "detail"}``
    shape, without echoing the input back.
    """
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(AsyncDALError, _layer_error)
    # Starlette runs an Exception handler in its outermost middleware, after which it
    # re-raises for the server to log; the client only ever sees the generic body.
    app.add_exception_handler(Exception, _unexpected_error)
