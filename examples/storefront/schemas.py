"""Request and response bodies: the service's contract, separate from the ORM models.

Responses are built from the layer's objects (ORM rows or read-model dataclasses) with
``from_attributes``; money is ``Decimal`` and travels as a JSON string, so no cent is lost to
floating point.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from asyncdal import OrderStatus

__all__ = [
    "MAX_ORDER_LINES",
    "MAX_QUANTITY",
    "ErrorBody",
    "NewOrder",
    "NewUser",
    "OrderDetail",
    "OrderLine",
    "OrderLineOut",
    "OrderOut",
    "OrderPage",
    "Overview",
    "ProductOut",
    "ProductPage",
    "UserOut",
    "UserPage",
]

#: Most lines one order may have, and most units of one product per line.
MAX_ORDER_LINES = 100
MAX_QUANTITY = 10_000
_ID = Annotated[int, Field(ge=1, le=2**63 - 1)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class ErrorBody(BaseModel):
    """Every error response: a stable ``error`` code and a human ``detail``."""

    error: str
    detail: object


class UserOut(_Out):
    """A user as the API shows it."""

    id: int
    username: str
    email: str
    display_name: str
    verified: bool
    follower_count: int
    created_at: datetime


class ProductOut(_Out):
    """A product with its current stock."""

    id: int
    sku: str
    name: str
    price: Decimal
    stock: int
    created_at: datetime


class OrderLineOut(_Out):
    """One line of an order, at the price it was placed at."""

    product_id: int
    quantity: int
    unit_price: Decimal


class OrderOut(_Out):
    """An order, without its lines (lists never load them)."""

    id: int
    user_id: int
    status: OrderStatus
    total: Decimal
    created_at: datetime


class OrderDetail(OrderOut):
    """An order with its lines, as placing or cancelling it returns."""

    items: list[OrderLineOut]


class _Page(BaseModel):
    """A page: pass ``next_cursor`` as ``cursor=`` (or ``next_offset`` as ``offset=``)."""

    next_cursor: str | None = None
    next_offset: int | None = None
    limit: int


class UserPage(_Page):
    """A page of users."""

    items: list[UserOut]


class ProductPage(_Page):
    """A page of products."""

    items: list[ProductOut]


class OrderPage(_Page):
    """A page of orders."""

    items: list[OrderOut]


class Overview(BaseModel):
    """``/all/``: the first page of users, orders and products, read concurrently."""

    users: list[UserOut]
    orders: list[OrderOut]
    products: list[ProductOut]


class NewUser(BaseModel):
    """The body of ``POST /users/``."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    email: Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
    display_name: Annotated[str, Field(max_length=128)] = ""


class OrderLine(BaseModel):
    """One product and how many of it."""

    model_config = ConfigDict(extra="forbid")

    product_id: _ID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]


class NewOrder(BaseModel):
    """The body of ``POST /orders/``: who orders what."""

    model_config = ConfigDict(extra="forbid")

    user_id: _ID
    items: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_ORDER_LINES)]

    @field_validator("items")
    @classmethod
    def _distinct_products(cls, items: list[OrderLine]) -> list[OrderLine]:
        seen: set[int] = set()
        for line in items:
            if line.product_id in seen:
                raise ValueError(f"product {line.product_id} appears twice; give one line each")
            seen.add(line.product_id)
        return items

    def quantities(self) -> dict[int, int]:
        """``{product_id: quantity}``, as the order repository takes it."""
        return {line.product_id: line.quantity for line in self.items}
