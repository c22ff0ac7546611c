"""factory-boy factories for every model, bound to the running test's session.

Factories only ``session.add`` (persistence ``None``); :func:`create` adds and flushes, so the
rows get their ids and server defaults inside the test's rolled-back transaction::

    users = await create(UserFactory, n=100)
"""

from __future__ import annotations

from contextvars import ContextVar
from decimal import Decimal
from typing import Any

import factory
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal import (
    Follow,
    Hashtag,
    Like,
    Order,
    OrderItem,
    OrderStatus,
    Post,
    PostHashtag,
    Product,
    User,
)

current_session: ContextVar[AsyncSession] = ContextVar("current_session")


def _session() -> Any:
    # factory-boy only calls session.add(), which AsyncSession offers synchronously.
    return current_session.get()


class _Factory(SQLAlchemyModelFactory):  # type: ignore[misc]
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _session
        sqlalchemy_session_persistence = None


class UserFactory(_Factory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    display_name = factory.Faker("name")
    verified = False
    follower_count = 0


class FollowFactory(_Factory):
    class Meta:
        model = Follow

    follower = factory.SubFactory(UserFactory)
    followee = factory.SubFactory(UserFactory)


class PostFactory(_Factory):
    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    body = factory.Faker("sentence")
    like_count = 0


class HashtagFactory(_Factory):
    class Meta:
        model = Hashtag

    tag = factory.Sequence(lambda n: f"tag{n}")


class PostHashtagFactory(_Factory):
    class Meta:
        model = PostHashtag

    post = factory.SubFactory(PostFactory)
    hashtag = factory.SubFactory(HashtagFactory)


class LikeFactory(_Factory):
    class Meta:
        model = Like

    user = factory.SubFactory(UserFactory)
    post = factory.SubFactory(PostFactory)


class ProductFactory(_Factory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU-{n:06d}")
    name = factory.Faker("word")
    price = factory.Sequence(lambda n: Decimal(n % 100) + Decimal("0.99"))
    stock = 100


class OrderFactory(_Factory):
    class Meta:
        model = Order

    user = factory.SubFactory(UserFactory)
    status = OrderStatus.PENDING
    total = Decimal("0.00")


class OrderItemFactory(_Factory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 1
    unit_price = factory.SelfAttribute("product.price")


async def create(factory_class: type[_Factory], n: int = 1, **overrides: Any) -> list[Any]:
    """Create ``n`` rows with ``factory_class`` in the current test session and flush them."""
    objects = factory_class.create_batch(n, **overrides)
    await current_session.get().flush()
    return objects


async def create_one(factory_class: type[_Factory], **overrides: Any) -> Any:
    """Create one row with ``factory_class`` and flush it."""
    (obj,) = await create(factory_class, 1, **overrides)
    return obj
