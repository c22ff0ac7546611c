"""The service's HTTP API, through the plugin's app_client (the app's lifespan runs)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from invoicing.app import create_app

from asyncdal import Database
from asyncdal.testing.factories import OrderFactory, create_one


@pytest.fixture
def app() -> FastAPI:
    service: FastAPI = create_app()
    return service


async def test_invoice_an_order(app_client: httpx.AsyncClient, committed_db: Database) -> None:
    # Committed, so that the request's own session (another connection) sees the order.
    order = await create_one(OrderFactory, db=committed_db, total=Decimal("12.50"))
    created = await app_client.post("/invoices/", json={"order_id": order.id, "number": "INV-1"})
    assert created.status_code == 201, created.text
    invoice = created.json()
    assert (invoice["order_id"], Decimal(invoice["amount"])) == (order.id, Decimal("12.50"))
    fetched = await app_client.get(f"/invoices/{invoice['id']}")
    assert fetched.json() == invoice
    again = await app_client.post("/invoices/", json={"order_id": order.id, "number": "INV-2"})
    assert again.status_code == 409  # one invoice per order


async def test_unknown_order_and_invoice_are_404(app_client: httpx.AsyncClient) -> None:
    missing = await app_client.post("/invoices/", json={"order_id": 10**9, "number": "X"})
    assert missing.status_code == 404, missing.text
    assert (await app_client.get("/invoices/1")).status_code == 404
