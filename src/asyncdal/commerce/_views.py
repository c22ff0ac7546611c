"""Seed 000's ``/all/`` as a view: the first page of users, orders and products, read at once.

Like the social views: ``reads(...)`` builds the reads, ``load(db, ...)`` runs them through
``db.gather`` (one session per read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from asyncdal._checks import check_limit
from asyncdal._database import Database
from asyncdal._gather import Read
from asyncdal.accounts._summary import UserSummary
from asyncdal.commerce._queries import StorefrontQueries
from asyncdal.commerce._results import OrderSummary, ProductSummary

__all__ = ["StorefrontOverview"]


@dataclass(frozen=True, slots=True)
class StorefrontOverview:
    """Seed 000's ``/all/``: the first page of users, orders and products."""

    users: list[UserSummary]
    orders: list[OrderSummary]
    products: list[ProductSummary]

    @staticmethod
    def reads(
        *, limit: int = 50
    ) -> tuple[Read[list[UserSummary]], Read[list[OrderSummary]], Read[list[ProductSummary]]]:
        """The overview's three reads (``limit`` rows each), checked before any session opens."""
        check_limit(limit)
        return (
            lambda s: StorefrontQueries(s).users(limit=limit),
            lambda s: StorefrontQueries(s).orders(limit=limit),
            lambda s: StorefrontQueries(s).products(limit=limit),
        )

    @classmethod
    async def load(cls, db: Database, *, limit: int = 50) -> Self:
        """Users, orders and products (``limit`` each), read concurrently."""
        users, orders, products = await db.gather(*cls.reads(limit=limit))
        return cls(users, orders, products)
