"""Seed 000's storefront lists as a read model: users, orders and products, page by page."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._checks import check_limit, check_offset
from asyncdal._error_mapping import wrap_errors
from asyncdal.accounts import User, UserSummary, user_columns
from asyncdal.commerce._models import Order, OrderStatus, Product
from asyncdal.commerce._results import OrderSummary, ProductSummary

__all__ = ["StorefrontQueries", "order_columns"]


def order_columns() -> Select[int, int, OrderStatus, Decimal, datetime]:
    """The columns of an :class:`OrderSummary`, in field order (shared with the profile)."""
    return select(Order.id, Order.user_id, Order.status, Order.total, Order.created_at)


class StorefrontQueries:
    """Read-only lists of users, orders and products over one session (seed 000's endpoints).

    Pages are ``limit`` rows (1..1000) from ``offset`` (>= 0); other values raise
    :class:`InvalidQueryError` before anything is sent.
    """

    def __init__(self, session: AsyncSession) -> None:
        """Query through ``session``; the caller owns it (and its transaction)."""
        self.session = session

    async def users(self, *, limit: int = 50, offset: int = 0) -> list[UserSummary]:
        """Users in id order."""
        stmt = (
            user_columns().order_by(User.id).limit(check_limit(limit)).offset(check_offset(offset))
        )
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return [UserSummary(*row) for row in rows]

    async def orders(self, *, limit: int = 50, offset: int = 0) -> list[OrderSummary]:
        """Orders, newest first (ties by id, newest first)."""
        stmt = (
            order_columns()
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(check_limit(limit))
            .offset(check_offset(offset))
        )
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return [OrderSummary(*row) for row in rows]

    async def products(self, *, limit: int = 50, offset: int = 0) -> list[ProductSummary]:
        """Products in id order."""
        stmt = (
            select(Product.id, Product.sku, Product.name, Product.price, Product.stock)
            .order_by(Product.id)
            .limit(check_limit(limit))
            .offset(check_offset(offset))
        )
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return [ProductSummary(*row) for row in rows]
