"""The typed results of the storefront read models: small frozen dataclasses, safe to share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from asyncdal.commerce._models import OrderStatus

__all__ = [
    "OrderSummary",
    "ProductSummary",
]


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """An order without its items."""

    id: int
    user_id: int
    status: OrderStatus
    total: Decimal
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ProductSummary:
    """A product with its price and current stock."""

    id: int
    sku: str
    name: str
    price: Decimal
    stock: int
