"""The implementation of :mod:`asyncdal.testing.factories` (see there)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from factory import declarations
from factory.alchemy import SQLAlchemyModelFactory
from factory.faker import Faker as _Faker

from asyncdal._database import Database
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderItem, OrderStatus, Product
from asyncdal.social import Follow, Hashtag, Like, Post, PostHashtag
from asyncdal.testing._context import current_session

__all__ = [
    "FollowFactory",
    "HashtagFactory",
    "LikeFactory",
    "OrderFactory",
    "OrderItemFactory",
    "PostFactory",
    "PostHashtagFactory",
    "ProductFactory",
    "UserFactory",
    "create",
    "create_one",
    "current_session",
]


def _session() -> Any:
    # factory-boy only calls session.add(), which AsyncSession offers synchronously.
    return current_session.get()


# factory-boy's declaration constructors are unannotated: these typed shims make the only calls.


def _sequence(function: Callable[[int], Any]) -> Any:
    return declarations.Sequence(function)  # type: ignore[no-untyped-call]


def _lazy_attribute(function: Callable[[Any], Any]) -> Any:
    return declarations.LazyAttribute(function)  # type: ignore[no-untyped-call]


def _faker(provider: str) -> Any:
    return _Faker(provider)  # type: ignore[no-untyped-call]


def _sub_factory(factory_class: type[_Factory]) -> Any:
    return declarations.SubFactory(factory_class)  # type: ignore[no-untyped-call]


def _self_attribute(attribute_name: str) -> Any:
    return declarations.SelfAttribute(attribute_name)  # type: ignore[no-untyped-call]


class _Factory(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _session
        sqlalchemy_session_persistence = None


class UserFactory(_Factory):
    """A user with a unique username and e-mail."""

    class Meta:
        model = User

    username = _sequence(lambda n: f"user{n}")
    email = _lazy_attribute(lambda u: f"{u.username}@example.org")
    display_name = _faker("name")
    verified = False
    follower_count = 0


class FollowFactory(_Factory):
    """One user following another (two new users unless given)."""

    class Meta:
        model = Follow

    follower = _sub_factory(UserFactory)
    followee = _sub_factory(UserFactory)


class PostFactory(_Factory):
    """A post by a new user unless ``author`` is given."""

    class Meta:
        model = Post

    author = _sub_factory(UserFactory)
    body = _faker("sentence")
    like_count = 0


class HashtagFactory(_Factory):
    """A hashtag with a unique lowercase tag."""

    class Meta:
        model = Hashtag

    tag = _sequence(lambda n: f"tag{n}")


class PostHashtagFactory(_Factory):
    """A hashtag on a post."""

    class Meta:
        model = PostHashtag

    post = _sub_factory(PostFactory)
    hashtag = _sub_factory(HashtagFactory)


class LikeFactory(_Factory):
    """A user liking a post."""

    class Meta:
        model = Like

    user = _sub_factory(UserFactory)
    post = _sub_factory(PostFactory)


class ProductFactory(_Factory):
    """A product with a unique SKU, in stock."""

    class Meta:
        model = Product

    sku = _sequence(lambda n: f"SKU-{n:06d}")
    name = _faker("word")
    price = _sequence(lambda n: Decimal(n % 100) + Decimal("0.99"))
    stock = 100


class OrderFactory(_Factory):
    """A pending order of a new user unless ``user`` is given (total 0: add items)."""

    class Meta:
        model = Order

    user = _sub_factory(UserFactory)
    status = OrderStatus.PENDING
    total = Decimal("0.00")


class OrderItemFactory(_Factory):
    """An order line at the product's price."""

    class Meta:
        model = OrderItem

    order = _sub_factory(OrderFactory)
    product = _sub_factory(ProductFactory)
    quantity = 1
    unit_price = _self_attribute("product.price")


async def create(
    factory_class: type[_Factory], n: int = 1, *, db: Database | None = None, **overrides: Any
) -> list[Any]:
    """Create ``n`` rows with ``factory_class`` and flush them.

    Without ``db``: in the current test session (the plugin's ``session`` fixture), rolled
    back after the test. With ``db`` (e.g. the ``committed_db`` fixture): in a unit of work of
    its own, **committed** before this returns, so other connections (``db.gather``, an HTTP
    request through ``app_client``) see the rows; the objects come back detached, their
    attributes loaded.
    """
    if db is None:
        objects = factory_class.create_batch(n, **overrides)
        await current_session.get().flush()
        return objects
    async with db.session() as session:
        token = current_session.set(session)
        try:
            objects = factory_class.create_batch(n, **overrides)
            await session.flush()
        finally:
            current_session.reset(token)
    return objects


async def create_one(
    factory_class: type[_Factory], *, db: Database | None = None, **overrides: Any
) -> Any:
    """Create one row with ``factory_class`` and flush it (committed with ``db``: see
    :func:`create`)."""
    (obj,) = await create(factory_class, 1, db=db, **overrides)
    return obj
