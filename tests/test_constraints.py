"""Every constraint is enforced by the database and mapped to the layer's error by SQLSTATE."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import delete, func, insert, select, update

from asyncdal import CheckViolationError, ConflictError, DALSession, DuplicateError, ForeignKeyError
from asyncdal._error_mapping import wrap_errors
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderItem, Product
from asyncdal.social import Follow, Hashtag, Like, Post
from asyncdal.testing.factories import (
    FollowFactory,
    LikeFactory,
    OrderFactory,
    OrderItemFactory,
    PostFactory,
    PostHashtagFactory,
    ProductFactory,
    UserFactory,
    create,
    create_one,
)


async def _flush_expecting(
    session: DALSession, error: type[ConflictError], constraint: str
) -> ConflictError:
    with pytest.raises(error) as info, wrap_errors():
        await session.flush()
    assert info.value.constraint == constraint
    assert info.value.__cause__ is not None
    return info.value


async def test_factories_build_every_model(session: DALSession) -> None:
    await create(FollowFactory, n=2)
    await create(PostHashtagFactory, n=2)
    await create(LikeFactory, n=2)
    await create(OrderItemFactory, n=2)
    counts = {
        model.__name__: await session.scalar(select(func.count()).select_from(model))
        for model in (User, Follow, Post, Hashtag, Like, Product, Order, OrderItem)
    }
    # Two follows (4 users), two posts from post_hashtags + two from likes (4 authors),
    # two likers, two orders (2 users).
    assert counts == {
        "User": 12,
        "Follow": 2,
        "Post": 4,
        "Hashtag": 2,
        "Like": 2,
        "Product": 2,
        "Order": 2,
        "OrderItem": 2,
    }


async def test_duplicate_username(session: DALSession) -> None:
    await create_one(UserFactory, username="ada")
    session.add(User(username="ada", email="other@example.org"))
    err = await _flush_expecting(session, DuplicateError, "uq_users_username")
    # The message names the column; the value stays in the DETAIL (issue 19).
    assert "(columns: username)" in str(err)
    assert "ada" not in str(err)
    assert "(username)=(ada)" in (err.detail or "")


async def test_duplicate_email(session: DALSession) -> None:
    await create_one(UserFactory, email="ada@example.org")
    session.add(User(username="ada2", email="ada@example.org"))
    await _flush_expecting(session, DuplicateError, "uq_users_email")


async def test_empty_username(session: DALSession) -> None:
    session.add(User(username="", email="x@example.org"))
    await _flush_expecting(session, CheckViolationError, "ck_users_username_not_empty")


async def test_negative_follower_count(session: DALSession) -> None:
    user = await create_one(UserFactory)
    with pytest.raises(CheckViolationError) as info, wrap_errors():
        await session.execute(update(User).where(User.id == user.id).values(follower_count=-1))
    assert info.value.constraint == "ck_users_follower_count_not_negative"


async def test_self_follow(session: DALSession) -> None:
    user = await create_one(UserFactory)
    session.add(Follow(follower_id=user.id, followee_id=user.id))
    err = await _flush_expecting(session, CheckViolationError, "ck_follows_not_self")
    # A CHECK written as SQL text: its columns are the ones its text names.
    assert err.columns == ("follower_id", "followee_id")
    assert "(columns: follower_id, followee_id)" in str(err)


async def test_duplicate_follow(session: DALSession) -> None:
    follow = await create_one(FollowFactory)
    # Core insert: the ORM would refuse a second object with the same identity before the
    # database could.
    with pytest.raises(DuplicateError) as info, wrap_errors():
        await session.execute(
            insert(Follow).values(follower_id=follow.follower_id, followee_id=follow.followee_id)
        )
    assert info.value.constraint == "pk_follows"


async def test_follow_of_missing_user(session: DALSession) -> None:
    user = await create_one(UserFactory)
    session.add(Follow(follower_id=user.id, followee_id=10**12))
    await _flush_expecting(session, ForeignKeyError, "fk_follows_followee_id_users")


async def test_upper_case_hashtag(session: DALSession) -> None:
    session.add(Hashtag(tag="Python"))
    err = await _flush_expecting(session, CheckViolationError, "ck_hashtags_tag_lower_not_empty")
    assert err.columns == ("tag",)  # named twice, and beside function names


async def test_duplicate_hashtag(session: DALSession) -> None:
    session.add_all([Hashtag(tag="python"), Hashtag(tag="python")])
    await _flush_expecting(session, DuplicateError, "uq_hashtags_tag")


async def test_empty_post_body(session: DALSession) -> None:
    user = await create_one(UserFactory)
    session.add(Post(author_id=user.id, body=""))
    await _flush_expecting(session, CheckViolationError, "ck_posts_body_not_empty")


async def test_duplicate_like(session: DALSession) -> None:
    like = await create_one(LikeFactory)
    with pytest.raises(DuplicateError) as info, wrap_errors():
        await session.execute(insert(Like).values(user_id=like.user_id, post_id=like.post_id))
    assert info.value.constraint == "pk_likes"


async def test_negative_like_count(session: DALSession) -> None:
    post = await create_one(PostFactory)
    with pytest.raises(CheckViolationError) as info, wrap_errors():
        await session.execute(update(Post).where(Post.id == post.id).values(like_count=-1))
    assert info.value.constraint == "ck_posts_like_count_not_negative"


async def test_negative_stock(session: DALSession) -> None:
    session.add(Product(sku="NEG", name="n", price=Decimal("1.00"), stock=-1))
    err = await _flush_expecting(session, CheckViolationError, "ck_products_stock_not_negative")
    assert err.columns == ("stock",)


async def test_negative_price(session: DALSession) -> None:
    session.add(Product(sku="NEG", name="n", price=Decimal("-0.01"), stock=1))
    await _flush_expecting(session, CheckViolationError, "ck_products_price_not_negative")


async def test_duplicate_sku(session: DALSession) -> None:
    await create_one(ProductFactory, sku="SKU-1")
    session.add(Product(sku="SKU-1", name="n", price=Decimal("1.00"), stock=1))
    await _flush_expecting(session, DuplicateError, "uq_products_sku")


async def test_order_item_for_missing_product(session: DALSession) -> None:
    order = await create_one(OrderFactory)
    session.add(OrderItem(order_id=order.id, product_id=10**12, quantity=1, unit_price=1))
    await _flush_expecting(session, ForeignKeyError, "fk_order_items_product_id_products")


async def test_order_item_quantity_must_be_positive(session: DALSession) -> None:
    order = await create_one(OrderFactory)
    product = await create_one(ProductFactory)
    session.add(OrderItem(order_id=order.id, product_id=product.id, quantity=0, unit_price=1))
    await _flush_expecting(session, CheckViolationError, "ck_order_items_quantity_positive")


async def test_negative_order_total(session: DALSession) -> None:
    user = await create_one(UserFactory)
    session.add(Order(user_id=user.id, total=Decimal("-1")))
    await _flush_expecting(session, CheckViolationError, "ck_orders_total_not_negative")


async def test_order_for_missing_user(session: DALSession) -> None:
    session.add(Order(user_id=10**12, total=Decimal("0")))
    await _flush_expecting(session, ForeignKeyError, "fk_orders_user_id_users")


async def test_user_with_orders_cannot_be_deleted(session: DALSession) -> None:
    order = await create_one(OrderFactory)
    with pytest.raises(ForeignKeyError) as info, wrap_errors():
        await session.execute(delete(User).where(User.id == order.user_id))
    assert info.value.constraint == "fk_orders_user_id_users"


async def test_ordered_product_cannot_be_deleted(session: DALSession) -> None:
    item = await create_one(OrderItemFactory)
    with pytest.raises(ForeignKeyError) as info, wrap_errors():
        await session.execute(delete(Product).where(Product.id == item.product_id))
    assert info.value.constraint == "fk_order_items_product_id_products"


async def test_deleting_a_user_cascades_to_posts_likes_and_follows(session: DALSession) -> None:
    like = await create_one(LikeFactory)
    author_id = like.post.author_id
    await create_one(FollowFactory, follower=like.post.author)
    await session.execute(delete(User).where(User.id == author_id))
    assert await session.scalar(select(func.count()).select_from(Post)) == 0
    assert await session.scalar(select(func.count()).select_from(Like)) == 0
    assert await session.scalar(select(func.count()).select_from(Follow)) == 0


async def test_money_is_exact(session: DALSession) -> None:
    product = await create_one(ProductFactory, price=Decimal("0.10"))
    total = await session.scalar(select(Product.price * 3).where(Product.id == product.id))
    assert total == Decimal("0.30")
