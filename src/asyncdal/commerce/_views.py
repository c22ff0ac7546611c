"""Seed 000's ``/all/`` as a view: the first page of users, orders and products, read at once.

Like the social views: ``reads(...)`` builds the reads, ``load(db, ...)`` runs them through
``db.gather`` (one session per read). Seed 000's ``/all/`` is its three list endpoints together,
so the overview is exactly their first pages: the repositories' ``list()`` in its default order
(by id), whole rows, ``limit`` of each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from asyncdal._checks import check_limit
from asyncdal._database import Database
from asyncdal._gather import Read
from asyncdal._session import DALSession
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce._models import Order, Product
from asyncdal.commerce._repositories import OrderRepository, ProductRepository

__all__ = ["StorefrontOverview"]


@dataclass(frozen=True, slots=True)
class StorefrontOverview:
    """Seed 000's ``/all/``: the first page of users, orders and products, as the lists give them.

    ``users``, ``orders`` and ``products`` are what ``UserRepository(s).list(limit=limit)``
    (and the same for orders and products) returns: whole rows, in id order.
    """

    users: list[User]
    orders: list[Order]
    products: list[Product]

    @staticmethod
    def reads(
        *, limit: int = 50
    ) -> tuple[Read[list[User]], Read[list[Order]], Read[list[Product]]]:
        """The overview's three reads (``limit`` rows each), checked before any session opens."""
        check_limit(limit)

        async def users(s: DALSession) -> list[User]:
            return (await UserRepository(s).list(limit=limit)).items

        async def orders(s: DALSession) -> list[Order]:
            return (await OrderRepository(s).list(limit=limit)).items

        async def products(s: DALSession) -> list[Product]:
            return (await ProductRepository(s).list(limit=limit)).items

        return users, orders, products

    @classmethod
    async def load(cls, db: Database, *, limit: int = 50) -> Self:
        """Users, orders and products (``limit`` each), read concurrently."""
        users, orders, products = await db.gather(*cls.reads(limit=limit))
        return cls(users, orders, products)
