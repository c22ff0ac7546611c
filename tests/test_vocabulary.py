"""One vocabulary: every domain repository offers the same verbs for the same jobs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from asyncdal import DALSession
from asyncdal.accounts import UserRepository
from asyncdal.commerce import OrderRepository, Product, ProductRepository
from asyncdal.social import FollowRepository, HashtagRepository, PostRepository

REPOSITORIES: list[type[object]] = [
    UserRepository,
    ProductRepository,
    OrderRepository,
    PostRepository,
    HashtagRepository,
    FollowRepository,
]
VERBS = (
    *("get", "get_many", "list", "count", "exists", "stream"),
    *("create", "add", "add_many", "update", "delete", "upsert"),
)


@pytest.mark.parametrize("repository", REPOSITORIES, ids=lambda r: r.__name__)
def test_every_repository_has_the_common_verbs(repository: type[object]) -> None:
    for verb in VERBS:
        assert callable(getattr(repository, verb, None)), f"{repository.__name__}.{verb}"


async def test_product_repository_creates_like_the_others(session: DALSession) -> None:
    product = await ProductRepository(session).create(
        sku="VOCAB-1", name="mug", price=Decimal("3.50"), stock=4
    )
    assert isinstance(product, Product)
    assert product.id is not None
    assert (await ProductRepository(session).get(product.id)).sku == "VOCAB-1"
