"""The storefront service over HTTP: every endpoint's success and error paths, values asserted.

The app runs on the test run's database with committed data (``committed_db``), because the
fan-out endpoints read in sessions of their own that must see it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from examples.storefront import create_app

from asyncdal import DALSession, Database
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderStatus, Product
from asyncdal.testing.factories import (
    HashtagFactory,
    OrderFactory,
    PostFactory,
    PostHashtagFactory,
    ProductFactory,
    UserFactory,
    create_one,
    current_session,
)

pytestmark = pytest.mark.committed


@asynccontextmanager
async def committing(db: Database) -> AsyncIterator[DALSession]:
    """A unit of work the factories add to; committed at the end of the block."""
    async with db.session() as session:
        token = current_session.set(session)
        try:
            yield session
        finally:
            current_session.reset(token)


@dataclass
class Shop:
    users: dict[str, User]
    products: dict[str, Product]
    orders: list[Order]


@pytest.fixture
async def shop(committed_db: Database) -> Shop:
    """Five users, three products, two orders, and posts with hashtags (one outside 7 days)."""
    async with committing(committed_db):
        users = {
            name: await create_one(
                UserFactory, username=name, follower_count=followers, verified=name == "ada"
            )
            for name, followers in [
                ("ada", 30),
                ("bob", 10),
                ("cy", 20),
                ("dee", 0),
                ("eve", 5),
            ]
        }
        products = {
            "pen": await create_one(ProductFactory, sku="PEN", price=Decimal("9.99"), stock=5),
            "ink": await create_one(ProductFactory, sku="INK", price=Decimal("20.00"), stock=0),
            "pad": await create_one(ProductFactory, sku="PAD", price=Decimal("5.50"), stock=100),
        }
        orders = [
            await create_one(OrderFactory, user=users["ada"], total=Decimal("19.98")),
            await create_one(
                OrderFactory, user=users["bob"], total=Decimal("5.50"), status=OrderStatus.SHIPPED
            ),
        ]
        python, sql, old = [
            await create_one(HashtagFactory, tag=t) for t in ("python", "sql", "old")
        ]
        p1 = await create_one(PostFactory, author=users["ada"], like_count=3, body="first")
        p2 = await create_one(PostFactory, author=users["ada"], like_count=5, body="second")
        p3 = await create_one(PostFactory, author=users["bob"], like_count=1, body="third")
        p4 = await create_one(
            PostFactory,
            author=users["cy"],
            like_count=50,
            created_at=datetime.now(UTC) - timedelta(days=30),
        )
        for post, tag in [(p1, python), (p2, python), (p2, sql), (p3, sql), (p4, old)]:
            await create_one(PostHashtagFactory, post=post, hashtag=tag)
    return Shop(users, products, orders)


@pytest.fixture
async def client(committed_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(committed_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://storefront") as c:
        yield c


def usernames(body: dict[str, Any]) -> list[str]:
    return [item["username"] for item in body["items"]]


# -- /users/ -----------------------------------------------------------------------------------


async def test_users_lists_every_user_in_id_order(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await client.get("/users/")
    assert response.status_code == 200
    body = response.json()
    assert usernames(body) == ["ada", "bob", "cy", "dee", "eve"]
    assert body["next_cursor"] is None
    assert body["limit"] == 50
    ada = body["items"][0]
    assert ada["id"] == shop.users["ada"].id
    assert ada["email"] == "ada@example.org"
    assert ada["follower_count"] == 30
    assert ada["verified"] is True


async def test_users_keyset_pages_cover_every_row_once(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, "sort": "-follower_count"}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/users/", params=params)).json()
        seen += usernames(body)
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ada", "cy", "bob", "eve", "dee"]
    assert pages == 3


async def test_users_offset_paging(client: httpx.AsyncClient, shop: Shop) -> None:
    body = (await client.get("/users/", params={"limit": 2, "offset": 2})).json()
    assert usernames(body) == ["cy", "dee"]
    assert body["next_offset"] == 4
    last = (await client.get("/users/", params={"limit": 2, "offset": 4})).json()
    assert usernames(last) == ["eve"]
    assert last["next_offset"] is None


async def test_users_filters_and_sort(client: httpx.AsyncClient, shop: Shop) -> None:
    body = (
        await client.get("/users/", params={"follower_count__gte": "10", "sort": "-follower_count"})
    ).json()
    assert usernames(body) == ["ada", "cy", "bob"]
    body = (await client.get("/users/?username__in=eve,ada&username__in=dee")).json()
    assert usernames(body) == ["ada", "dee", "eve"]
    body = (await client.get("/users/", params={"verified": "true"})).json()
    assert usernames(body) == ["ada"]
    # LIKE wildcards in a value match themselves.
    body = (await client.get("/users/", params={"username__contains": "%"})).json()
    assert body["items"] == []


@pytest.mark.parametrize(
    ("query", "error", "says"),
    [
        ("limit=0", "invalid_request", "greater than or equal to 1"),
        ("limit=501", "invalid_request", "less than or equal to 500"),
        ("limit=ten", "invalid_request", "valid integer"),
        ("offset=-1", "invalid_request", "greater than or equal to 0"),
        ("offset=0&cursor=abc", "invalid_query", "either offset or cursor"),
        ("cursor=not-a-cursor", "invalid_query", "cursor"),
        ("sort=password", "invalid_query", "allowed sort keys"),
        ("sort=email", "invalid_query", "allowed sort keys"),
        ("sort=id;drop table users", "invalid_request", "pattern"),
        ("sort=id,id", "invalid_query", "twice"),
        ("password=x", "invalid_query", "allowed fields"),
        ("username__regex=.*", "invalid_query", "allowed operators"),
        ("follower_count__gte=many", "invalid_query", "expected an integer"),
        ("follower_count=99999999999999999999", "invalid_query", "expected an integer"),
        ("created_at__gt=yesterday", "invalid_query", "ISO 8601"),
        ("username=a&username=b", "invalid_query", "more than once"),
    ],
)
async def test_users_bad_parameters_are_422_with_a_useful_message(
    client: httpx.AsyncClient, shop: Shop, query: str, error: str, says: str
) -> None:
    response = await client.get(f"/users/?{query}")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == error
    assert says in str(body["detail"])


async def test_users_cursor_of_another_sort_is_rejected(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    page = (await client.get("/users/", params={"limit": 1, "sort": "username"})).json()
    response = await client.get(
        "/users/", params={"limit": 1, "sort": "-follower_count", "cursor": page["next_cursor"]}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_query"


async def test_register_user(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await client.post(
        "/users/", json={"username": "fay", "email": "fay@example.org", "display_name": "Fay"}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["username"] == "fay"
    assert created["follower_count"] == 0
    # Committed by the request's unit of work: a new request sees it.
    listed = (await client.get("/users/", params={"username": "fay"})).json()
    assert [u["id"] for u in listed["items"]] == [created["id"]]


async def test_register_duplicate_user_is_409(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await client.post("/users/", json={"username": "ada", "email": "new@example.org"})
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "duplicate"
    assert body["constraint"] == "uq_users_username"
    assert (await client.get("/users/")).json()["items"][-1]["username"] == "eve"


@pytest.mark.parametrize(
    "payload",
    [
        {"username": "", "email": "x@example.org"},
        {"username": "fay", "email": "not-an-email"},
        {"username": "fay", "email": "fay@example.org", "is_admin": True},
        {"username": "f" * 65, "email": "fay@example.org"},
        {"email": "fay@example.org"},
    ],
)
async def test_register_invalid_body_is_422(
    client: httpx.AsyncClient, shop: Shop, payload: dict[str, Any]
) -> None:
    response = await client.post("/users/", json=payload)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"
    assert len((await client.get("/users/")).json()["items"]) == 5


# -- /products/ --------------------------------------------------------------------------------


async def test_products_list_filter_and_money(client: httpx.AsyncClient, shop: Shop) -> None:
    body = (await client.get("/products/", params={"stock__gt": 0, "sort": "-price"})).json()
    assert [(p["sku"], p["price"], p["stock"]) for p in body["items"]] == [
        ("PEN", "9.99", 5),
        ("PAD", "5.50", 100),
    ]
    body = (await client.get("/products/", params={"price__lte": "5.5"})).json()
    assert [p["sku"] for p in body["items"]] == ["PAD"]
    response = await client.get("/products/", params={"price__lt": "cheap"})
    assert response.status_code == 422
    assert "finite decimal" in response.json()["detail"]


async def test_product_by_id(client: httpx.AsyncClient, shop: Shop) -> None:
    pen = shop.products["pen"]
    body = (await client.get(f"/products/{pen.id}")).json()
    assert body == {
        "id": pen.id,
        "sku": "PEN",
        "name": pen.name,
        "price": "9.99",
        "stock": 5,
        "version": 1,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    missing = await client.get("/products/999999")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "Product not found"}
    assert (await client.get("/products/0")).status_code == 422
    assert (await client.get("/products/pen")).status_code == 422


# -- /orders/ ----------------------------------------------------------------------------------


async def test_orders_list_and_filters(client: httpx.AsyncClient, shop: Shop) -> None:
    body = (await client.get("/orders/")).json()
    assert [(o["user_id"], o["status"], o["total"]) for o in body["items"]] == [
        (shop.users["ada"].id, "pending", "19.98"),
        (shop.users["bob"].id, "shipped", "5.50"),
    ]
    shipped = (await client.get("/orders/", params={"status": "shipped"})).json()
    assert [o["id"] for o in shipped["items"]] == [shop.orders[1].id]
    mine = (await client.get("/orders/", params={"user_id": shop.users["ada"].id})).json()
    assert [o["id"] for o in mine["items"]] == [shop.orders[0].id]
    bad = await client.get("/orders/", params={"status": "lost"})
    assert bad.status_code == 422
    assert "'pending'" in bad.json()["detail"]


async def stock_of(client: httpx.AsyncClient, product: Product) -> int:
    return int((await client.get(f"/products/{product.id}")).json()["stock"])


async def test_place_order(client: httpx.AsyncClient, shop: Shop) -> None:
    pen, pad = shop.products["pen"], shop.products["pad"]
    response = await client.post(
        "/orders/",
        json={
            "user_id": shop.users["dee"].id,
            "items": [{"product_id": pad.id, "quantity": 2}, {"product_id": pen.id, "quantity": 3}],
        },
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending"
    assert order["total"] == "40.97"  # 3 x 9.99 + 2 x 5.50
    assert sorted((i["product_id"], i["quantity"], i["unit_price"]) for i in order["items"]) == (
        sorted([(pen.id, 3, "9.99"), (pad.id, 2, "5.50")])
    )
    assert await stock_of(client, pen) == 2
    assert await stock_of(client, pad) == 98
    listed = (await client.get("/orders/", params={"user_id": shop.users["dee"].id})).json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]


async def test_insufficient_stock_is_409_naming_the_product(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    pen, ink = shop.products["pen"], shop.products["ink"]
    response = await client.post(
        "/orders/",
        json={
            "user_id": shop.users["dee"].id,
            "items": [{"product_id": pen.id, "quantity": 1}, {"product_id": ink.id, "quantity": 2}],
        },
    )
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "insufficient_stock"
    assert (body["product_id"], body["requested"], body["available"]) == (ink.id, 2, 0)
    # Nothing of the order was written: the pen's stock is untouched, no order exists.
    assert await stock_of(client, pen) == 5
    dee_orders = await client.get("/orders/", params={"user_id": shop.users["dee"].id})
    assert dee_orders.json()["items"] == []


async def test_order_for_missing_user_or_product_is_404(
    client: httpx.AsyncClient, shop: Shop
) -> None:
    pen = shop.products["pen"]
    no_user = await client.post(
        "/orders/", json={"user_id": 999999, "items": [{"product_id": pen.id, "quantity": 1}]}
    )
    assert no_user.status_code == 404
    assert no_user.json()["detail"] == "User not found"
    no_product = await client.post(
        "/orders/",
        json={"user_id": shop.users["ada"].id, "items": [{"product_id": 999999, "quantity": 1}]},
    )
    assert no_product.status_code == 404
    assert no_product.json()["detail"] == "Product not found"
    assert await stock_of(client, pen) == 5


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([], "at least 1"),
        ([{"product_id": 1, "quantity": 0}], "greater than or equal to 1"),
        ([{"product_id": 1, "quantity": 10_001}], "less than or equal to 10000"),
        ([{"product_id": 0, "quantity": 1}], "greater than or equal to 1"),
        ([{"product_id": 1, "quantity": 1}, {"product_id": 1, "quantity": 2}], "appears twice"),
        ([{"product_id": "one", "quantity": 1}], "valid integer"),
    ],
)
async def test_invalid_order_body_is_422(
    client: httpx.AsyncClient, shop: Shop, items: list[Any], says: str
) -> None:
    response = await client.post("/orders/", json={"user_id": shop.users["ada"].id, "items": items})
    assert response.status_code == 422
    assert says in str(response.json()["detail"])


async def test_cancel_order_restocks_once(client: httpx.AsyncClient, shop: Shop) -> None:
    pen = shop.products["pen"]
    placed = (
        await client.post(
            "/orders/",
            json={
                "user_id": shop.users["eve"].id,
                "items": [{"product_id": pen.id, "quantity": 4}],
            },
        )
    ).json()
    assert await stock_of(client, pen) == 1
    for _ in range(2):  # the second cancel is a no-op, not a second restock
        response = await client.post(f"/orders/{placed['id']}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        assert response.json()["items"][0]["quantity"] == 4
        assert await stock_of(client, pen) == 5


async def test_cancel_shipped_or_missing_order(client: httpx.AsyncClient, shop: Shop) -> None:
    shipped = await client.post(f"/orders/{shop.orders[1].id}/cancel")
    assert shipped.status_code == 409
    assert shipped.json()["error"] == "conflict"
    assert "shipped" in shipped.json()["detail"]
    missing = await client.post("/orders/999999/cancel")
    assert missing.status_code == 404


# -- the fan-out endpoints ---------------------------------------------------------------------


async def test_all_is_the_three_lists_first_pages(client: httpx.AsyncClient, shop: Shop) -> None:
    """Seed 000's /all/ is its three list endpoints together: same rows, fields and order."""
    for params in ({}, {"limit": 2}, {"limit": 1}):
        body = (await client.get("/all/", params=params)).json()
        for name in ("users", "orders", "products"):
            listed = (await client.get(f"/{name}/", params=params)).json()
            assert body[name] == listed["items"], name
    body = (await client.get("/all/")).json()
    assert [u["username"] for u in body["users"]] == ["ada", "bob", "cy", "dee", "eve"]
    assert body["users"][0]["email"] == "ada@example.org"
    assert [o["id"] for o in body["orders"]] == sorted(o.id for o in shop.orders)
    assert [(p["sku"], p["price"], p["stock"]) for p in body["products"]] == [
        ("PEN", "9.99", 5),
        ("INK", "20.00", 0),
        ("PAD", "5.50", 100),
    ]
    assert {"created_at", "version", "updated_at"} <= set(body["products"][0])
    two = (await client.get("/all/", params={"limit": 2})).json()
    assert [len(two[k]) for k in ("users", "orders", "products")] == [2, 2, 2]
    for bad in ("0", "501", "x"):
        assert (await client.get("/all/", params={"limit": bad})).status_code == 422


async def test_dashboard(client: httpx.AsyncClient, shop: Shop) -> None:
    response = await client.get("/dashboard", params={"top": 3})
    assert response.status_code == 200
    body = response.json()
    assert [(u["username"], u["follower_count"]) for u in body["top_users"]] == [
        ("ada", 30),
        ("cy", 20),
        ("bob", 10),
    ]
    # The 30-day-old post (and its tag "old") is outside the default 7 days.
    assert body["trending_hashtags"] == [
        {"tag": "python", "post_count": 2},
        {"tag": "sql", "post_count": 2},
    ]
    assert body["stats"] == {
        "days": 7,
        "total_posts": 3,
        "active_users": 2,
        "total_likes": 9,
        "avg_likes": "3.00",
    }
    month = (await client.get("/dashboard", params={"days": 31, "consistent": "true"})).json()
    assert month["stats"]["total_posts"] == 4
    assert month["stats"]["total_likes"] == 59
    assert {t["tag"] for t in month["trending_hashtags"]} == {"python", "sql", "old"}


@pytest.mark.parametrize("query", ["days=0", "days=3651", "top=0", "top=101", "trending=-1"])
async def test_dashboard_bad_parameters(client: httpx.AsyncClient, shop: Shop, query: str) -> None:
    response = await client.get(f"/dashboard?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


async def test_profile(client: httpx.AsyncClient, shop: Shop) -> None:
    ada = shop.users["ada"]
    response = await client.get(f"/users/{ada.id}")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "ada"
    assert body["user"]["follower_count"] == 30
    assert [p["body"] for p in body["recent_posts"]] == ["second", "first"]
    assert [(o["id"], o["total"]) for o in body["recent_orders"]] == [(shop.orders[0].id, "19.98")]
    one = (await client.get(f"/users/{ada.id}", params={"posts": 1})).json()
    assert [p["body"] for p in one["recent_posts"]] == ["second"]


async def test_profile_errors(client: httpx.AsyncClient, shop: Shop) -> None:
    missing = await client.get("/users/999999")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "detail": "User not found"}
    assert (await client.get("/users/0")).status_code == 422
    assert (await client.get("/users/ada")).status_code == 422
    assert (await client.get(f"/users/{shop.users['ada'].id}?posts=0")).status_code == 422
