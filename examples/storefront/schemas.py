"""Request and response bodies: the service's contract, separate from the ORM models.

Responses are built from the layer's objects (ORM rows or read-model dataclasses) with
``from_attributes``; money is ``Decimal`` and travels as a JSON string, so no cent is lost to
floating point.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from asyncdal.commerce import OrderStatus

__all__ = [
    "MAX_ORDER_LINES",
    "MAX_QUANTITY",
    "Dashboard",
    "ErrorBody",
    "NewOrder",
    "NewUser",
    "OrderDetail",
    "OrderLine",
    "OrderLineOut",
    "OrderOut",
    "OrderPage",
    "Overview",
    "PlatformStatsOut",
    "PostOut",
    "ProductChange",
    "ProductOut",
    "ProductPage",
    "Profile",
    "TopUserOut",
    "TrendingHashtagOut",
    "UserOut",
    "UserPage",
    "UserSummaryOut",
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
    """A product with its current stock; ``version`` is also its ``ETag``."""

    id: int
    sku: str
    name: str
    price: Decimal
    stock: int
    version: int
    created_at: datetime
    updated_at: datetime


class ProductChange(BaseModel):
    """The body of ``PATCH /products/{id}``: the fields to change (at least one)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)] | None = None
    stock: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None

    def values(self) -> dict[str, object]:
        """The fields the client sent, for ``ProductRepository.update``; null is refused."""
        return self.model_dump(exclude_unset=True)

    @model_validator(mode="after")
    def _something_and_nothing_null(self) -> ProductChange:
        sent = self.model_dump(exclude_unset=True)
        if not sent:
            raise ValueError("give at least one of name, price, stock")
        nulls = sorted(name for name, value in sent.items() if value is None)
        if nulls:
            raise ValueError(f"{nulls} cannot be null")
        return self


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


# -- the read models' results (asyncdal's frozen dataclasses) -------------------------------


class UserSummaryOut(_Out):
    """A user as lists and profiles show it (no e-mail address)."""

    id: int
    username: str
    display_name: str
    follower_count: int
    verified: bool
    created_at: datetime


class PostOut(_Out):
    """A post with its like count."""

    id: int
    author_id: int
    body: str
    like_count: int
    created_at: datetime


class Overview(_Out):
    """``/all/``: the first page of ``/users/``, ``/orders/`` and ``/products/``, read at once.

    The same rows, fields and order as the three list endpoints' first pages (by id).
    """

    users: list[UserOut]
    orders: list[OrderOut]
    products: list[ProductOut]


class TopUserOut(_Out):
    """A user ranked by followers."""

    id: int
    username: str
    display_name: str
    follower_count: int
    verified: bool


class TrendingHashtagOut(_Out):
    """A hashtag and how many posts of the window carry it."""

    tag: str
    post_count: int


class PlatformStatsOut(_Out):
    """Activity over the last ``days`` days."""

    days: int
    total_posts: int
    active_users: int
    total_likes: int
    avg_likes: Decimal


class Dashboard(_Out):
    """``/dashboard``: seed 002's three reads, run concurrently."""

    top_users: list[TopUserOut]
    trending_hashtags: list[TrendingHashtagOut]
    stats: PlatformStatsOut


class Profile(_Out):
    """``GET /users/{id}``: the user, their recent posts and orders, read concurrently."""

    user: UserSummaryOut
    recent_posts: list[PostOut]
    recent_orders: list[OrderOut]
