"""The service's HTTP API: asyncdal's FastAPI glue on the service's own table.

Run it with ``uvicorn --factory invoicing.app:create_app`` (``DATABASE_URL`` set, both schemas
migrated). Errors are asyncdal's bodies: an unknown order or invoice is 404, a second invoice
for one order (or a taken number) 409.
"""

from __future__ import annotations

from decimal import Decimal

from fastapi import FastAPI
from pydantic import BaseModel, Field

from asyncdal.commerce import OrderRepository
from asyncdal.fastapi import SessionDep, install_error_handlers, lifespan
from invoicing.repository import InvoiceRepository

__all__ = ["InvoiceIn", "InvoiceOut", "create_app"]


class InvoiceIn(BaseModel):
    """What a client sends to invoice an order."""

    order_id: int = Field(ge=1)
    number: str = Field(min_length=1, max_length=32)


class InvoiceOut(BaseModel):
    """An invoice as the API returns it."""

    id: int
    order_id: int
    number: str
    amount: Decimal


def create_app() -> FastAPI:
    """The app: its Database from DATABASE_URL / ASYNCDAL_* at start-up, disposed at shutdown."""
    app = FastAPI(title="invoicing", lifespan=lifespan())
    install_error_handlers(app)

    @app.post("/invoices/", status_code=201)
    async def invoice_order(body: InvoiceIn, session: SessionDep) -> InvoiceOut:
        order = await OrderRepository(session).get(body.order_id)  # NotFoundError: 404
        invoice = await InvoiceRepository(session).create(
            order_id=order.id, number=body.number, amount=order.total
        )
        return InvoiceOut(
            id=invoice.id, order_id=invoice.order_id, number=invoice.number, amount=invoice.amount
        )

    @app.get("/invoices/{invoice_id}")
    async def get_invoice(invoice_id: int, session: SessionDep) -> InvoiceOut:
        invoice = await InvoiceRepository(session).get(invoice_id)  # NotFoundError: 404
        return InvoiceOut(
            id=invoice.id, order_id=invoice.order_id, number=invoice.number, amount=invoice.amount
        )

    return app
