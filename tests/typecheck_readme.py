"""Checked by ``mypy --strict`` (CI's type-check step), not run: the README's examples infer
precise types. A regression to ``Any`` fails ``assert_type`` at type-check time."""

from __future__ import annotations

from typing import assert_type

from asyncdal import Database, Page
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import Order, OrderRepository, Product, ProductRepository
from asyncdal.social import PlatformStats, SocialQueries, TopUser, TrendingHashtag


async def readme_gather(db: Database) -> None:
    """The README's ``db.gather`` example, as written."""
    top, trending, stats = await db.gather(  # each read in its OWN session, bounded, cancellable
        lambda s: SocialQueries(s).top_users(limit=5),
        lambda s: SocialQueries(s).trending_hashtags(days=7),
        lambda s: SocialQueries(s).platform_stats(days=7),
        consistent=True,
    )
    assert_type(top, list[TopUser])
    assert_type(trending, list[TrendingHashtag])
    assert_type(stats, PlatformStats)


async def readme_unit_of_work(db: Database, product_id: int) -> None:
    """The README's unit of work and transaction examples."""
    async with db.session() as s:
        ada = await UserRepository(s).create(username="ada", email="ada@example.org")
        page = await UserRepository(s).list(
            {"username__startswith": "a"}, order_by="-follower_count"
        )
        product = await ProductRepository(s).create(sku="A-1", name="mug", price=3, stock=1)
    assert_type(ada, User)
    assert_type(page, Page[User])
    assert_type(product, Product)
    order = await db.transaction(
        lambda s: OrderRepository(s).place(ada.id, {product_id: 2}), isolation="SERIALIZABLE"
    )
    assert_type(order, Order)


async def readme_read_path(db: Database, user_id: int) -> None:
    """The README's ``db.get`` and ``db.read()`` examples: typed by the model passed."""
    assert_type(await db.get(User, user_id), User)
    assert_type(await db.get_many(User, [user_id]), list[User])
    async with db.read() as s:
        assert_type(await UserRepository(s).count(), int)
