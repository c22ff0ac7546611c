"""The storefront's product edit: ETag / If-Match, and 412 instead of a lost update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from examples.storefront import create_app
from sqlalchemy import select

from asyncdal import Database
from asyncdal.commerce import Product

pytestmark = pytest.mark.committed


@pytest.fixture
async def client(committed_db: Database) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(committed_db))
    async with httpx.AsyncClient(transport=transport, base_url="http://storefront") as c:
        yield c


@pytest.fixture
async def product_id(committed_db: Database) -> int:
    async with committed_db.session() as s:
        product = Product(sku="LAMP", name="lamp", price=Decimal("20.00"), stock=4)
        s.add(product)
        await s.flush()
        return product.id


async def _stored(db: Database, product_id: int) -> tuple[str, Decimal, int, int]:
    async with db.session() as s:
        row = (
            await s.execute(
                select(Product.name, Product.price, Product.stock, Product.version).where(
                    Product.id == product_id
                )
            )
        ).one()
    return row.name, row.price, row.stock, row.version


async def test_get_then_patch_with_its_etag(client: httpx.AsyncClient, product_id: int) -> None:
    got = await client.get(f"/products/{product_id}")
    assert got.headers["etag"] == '"1"'
    assert got.json()["version"] == 1
    patched = await client.patch(
        f"/products/{product_id}", json={"price": "18.50"}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["etag"] == '"2"'
    body = patched.json()
    assert (body["price"], body["stock"], body["version"]) == ("18.50", 4, 2)
    assert body["updated_at"] >= got.json()["updated_at"]


async def test_two_concurrent_edits_of_one_version_one_gets_412(
    client: httpx.AsyncClient, committed_db: Database, product_id: int
) -> None:
    etag = (await client.get(f"/products/{product_id}")).headers["etag"]

    async def edit(name: str) -> httpx.Response:
        return await client.patch(
            f"/products/{product_id}", json={"name": name}, headers={"If-Match": etag}
        )

    first, second = await asyncio.gather(edit("desk lamp"), edit("floor lamp"))
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    winner, loser = (first, second) if first.status_code == 200 else (second, first)
    assert loser.json()["error"] == "precondition_failed"
    assert loser.json()["current_version"] == 2
    assert loser.headers["etag"] == '"2"'
    # The winner's name is stored; the loser overwrote nothing.
    assert await _stored(committed_db, product_id) == (
        winner.json()["name"],
        Decimal("20.00"),
        4,
        2,
    )


async def test_a_stale_etag_after_an_order_is_412(
    client: httpx.AsyncClient, committed_db: Database, product_id: int
) -> None:
    etag = (await client.get(f"/products/{product_id}")).headers["etag"]
    user = await client.post("/users/", json={"username": "buyer", "email": "b@example.org"})
    order = await client.post(
        "/orders/",
        json={"user_id": user.json()["id"], "items": [{"product_id": product_id, "quantity": 3}]},
    )
    assert order.status_code == 201
    # The admin's form still says stock 4: writing 4 + 10 would undo the order's decrement.
    stale = await client.patch(
        f"/products/{product_id}", json={"stock": 14}, headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert await _stored(committed_db, product_id) == ("lamp", Decimal("20.00"), 1, 2)


async def test_if_match_is_required_and_checked(client: httpx.AsyncClient, product_id: int) -> None:
    url = f"/products/{product_id}"
    missing = await client.patch(url, json={"stock": 1})
    assert missing.status_code == 428
    assert missing.json()["error"] == "precondition_required"
    bad_tags = ['W/"1"', "1", '"1", "2"', '"0"', '"abc"', '"\u00b2"', '"99999999999"', ""]
    for bad in bad_tags:
        headers = {b"If-Match": bad.encode()}  # as bytes: a non-ASCII digit too
        response = await client.patch(url, json={"stock": 1}, headers=headers)
        assert response.status_code == 412, bad
    anything = await client.patch(url, json={"stock": 2}, headers={"If-Match": "*"})
    assert anything.status_code == 200
    assert anything.json()["stock"] == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"stock": -1}, {"price": "1.001"}, {"name": ""}, {"sku": "X"}, {"stock": None}],
)
async def test_bad_bodies_are_422(
    client: httpx.AsyncClient, product_id: int, body: dict[str, object]
) -> None:
    response = await client.patch(f"/products/{product_id}", json=body, headers={"If-Match": '"1"'})
    assert response.status_code == 422, response.text


async def test_missing_product_is_404(client: httpx.AsyncClient) -> None:
    response = await client.patch(
        "/products/999999", json={"stock": 1}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 404
