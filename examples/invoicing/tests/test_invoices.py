"""The service's own tests: its table, asyncdal's factories and errors, rolled back per test."""

from __future__ import annotations

from decimal import Decimal

import pytest
from invoicing.repository import InvoiceRepository

from asyncdal import DALSession, Database, ForeignKeyError, check_schema
from asyncdal.testing.factories import OrderFactory, create_one


async def test_an_invoice_for_an_order(session: DALSession) -> None:
    order = await create_one(OrderFactory, total=Decimal("12.50"))
    invoice = await InvoiceRepository(session).create(
        order_id=order.id, number="INV-1", amount=order.total
    )
    page = await InvoiceRepository(session).list({"order_id": order.id})
    assert [i.id for i in page] == [invoice.id]


async def test_an_invoice_needs_an_order(session: DALSession) -> None:
    with pytest.raises(ForeignKeyError) as info:
        await InvoiceRepository(session).create(order_id=10**9, number="X", amount=1)
    assert info.value.constraint == "fk_invoices_order_id_orders"


async def test_the_previous_tests_left_nothing(session: DALSession) -> None:
    assert await InvoiceRepository(session).count() == 0


async def test_asyncdal_schema_is_clean_beside_the_service(db: Database) -> None:
    assert await check_schema(db) == []
