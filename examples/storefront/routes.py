"""The endpoints: seed 000's ``/users/ /orders/ /products/ /all/``, seed 002's ``/dashboard``,
a user profile, and placing, cancelling and registering.

Single reads and writes take one session per request (:data:`SessionDep`: committed when the
endpoint returns). Endpoints that read several things at once fan out with ``db.gather``, one
session per read, instead of sharing one connection the way seed 002 does.
"""

from __future__ import annotations

import re
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Response, status
from fastapi.responses import JSONResponse

from asyncdal import Base, Page, Repository
from asyncdal.accounts import UserRepository
from asyncdal.commerce import OrderRepository, ProductRepository
from asyncdal.fastapi import SessionDep, etag
from examples.storefront.listing import Listing, listing
from examples.storefront.schemas import (
    ErrorBody,
    NewOrder,
    NewUser,
    OrderDetail,
    OrderPage,
    ProductChange,
    ProductOut,
    ProductPage,
    UserOut,
    UserPage,
)

__all__ = ["router"]

M = TypeVar("M", bound=Base)

router = APIRouter()

ListingDep = Annotated[Listing, Depends(listing)]
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
# One strong entity tag holding a version: "3" (ASCII digits only).
_STRONG_TAG = re.compile(r'"([1-9][0-9]{0,9})"', re.ASCII)

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (404, 409, 422, 500, 503, 504)
}


async def _page(repository: Repository[M], params: Listing) -> Page[M]:
    return await repository.list(
        params.where,
        order_by=params.sort or None,
        limit=params.limit,
        offset=params.offset,
        cursor=params.cursor,
    )


@router.get("/users/", response_model=UserPage, responses=_ERRORS)
async def list_users(session: SessionDep, params: ListingDep) -> UserPage:
    """A page of users; filter on any allowed field (``?username__startswith=ad``)."""
    page = await _page(UserRepository(session), params)
    return UserPage.model_validate(page, from_attributes=True)


@router.post(
    "/users/", response_model=UserOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS
)
async def create_user(session: SessionDep, body: NewUser) -> UserOut:
    """Register a user; a taken username or e-mail is a 409."""
    user = await UserRepository(session).create(
        username=body.username, email=body.email, display_name=body.display_name
    )
    return UserOut.model_validate(user)


@router.get("/products/", response_model=ProductPage, responses=_ERRORS)
async def list_products(session: SessionDep, params: ListingDep) -> ProductPage:
    """A page of products (``?stock__gt=0&sort=price``)."""
    page = await _page(ProductRepository(session), params)
    return ProductPage.model_validate(page, from_attributes=True)


@router.get("/products/{product_id}", response_model=ProductOut, responses=_ERRORS)
async def get_product(session: SessionDep, product_id: IdPath, response: Response) -> ProductOut:
    """One product with its current stock; its ``ETag`` is what ``PATCH`` wants in ``If-Match``."""
    product = await ProductRepository(session).get(product_id)
    response.headers["ETag"] = etag(product.version)
    return ProductOut.model_validate(product)


@router.patch(
    "/products/{product_id}",
    response_model=ProductOut,
    responses={**_ERRORS, 412: {"model": ErrorBody}, 428: {"model": ErrorBody}},
)
async def update_product(
    session: SessionDep,
    product_id: IdPath,
    body: ProductChange,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> ProductOut | JSONResponse:
    """Change a product, only if it is still the version the client read (no lost update).

    ``If-Match`` is required (428 without it): the ``ETag`` of a ``GET``, or ``*`` to write
    whatever the version. If the product changed since, nothing is written and the answer is
    412 with the current ``ETag``: fetch it again and re-apply the change.
    """
    if if_match is None:
        return JSONResponse(
            {"error": "precondition_required", "detail": "send If-Match with the ETag you read"},
            status_code=status.HTTP_428_PRECONDITION_REQUIRED,
        )
    expected = _if_match_version(if_match)
    if expected == 0:
        return JSONResponse(
            {"error": "precondition_failed", "detail": "If-Match names no current version"},
            status_code=status.HTTP_412_PRECONDITION_FAILED,
        )
    product = await ProductRepository(session).update(
        product_id, expected_version=expected, **body.values()
    )
    response.headers["ETag"] = etag(product.version)
    return ProductOut.model_validate(product)


def _if_match_version(header: str) -> int | None:
    """``None`` for ``*``; the version of one strong tag (``"3"``); ``0`` for anything else.

    Weak tags (``W/"3"``) never match for ``If-Match``; a list of several tags is not
    supported, so it matches nothing either.
    """
    value = header.strip()
    if value == "*":
        return None
    tag = _STRONG_TAG.fullmatch(value)
    version = int(tag[1]) if tag else 0
    return version if version < 2**31 else 0


@router.get("/orders/", response_model=OrderPage, responses=_ERRORS)
async def list_orders(session: SessionDep, params: ListingDep) -> OrderPage:
    """A page of orders (``?user_id=7&status__in=pending,paid&sort=-created_at``)."""
    page = await _page(OrderRepository(session), params)
    return OrderPage.model_validate(page, from_attributes=True)


@router.post(
    "/orders/", response_model=OrderDetail, status_code=status.HTTP_201_CREATED, responses=_ERRORS
)
async def place_order(session: SessionDep, body: NewOrder) -> OrderDetail:
    """Place an order: stock is checked and taken in one transaction.

    409 ``insufficient_stock`` names the product that is short; nothing is written then.
    """
    # Checked first so a missing user is a 404 that says so, not a foreign-key 409.
    await UserRepository(session).get(body.user_id)
    order = await OrderRepository(session).place(body.user_id, body.quantities())
    return OrderDetail.model_validate(order)


@router.post("/orders/{order_id}/cancel", response_model=OrderDetail, responses=_ERRORS)
async def cancel_order(session: SessionDep, order_id: IdPath) -> OrderDetail:
    """Cancel an order and restock its items; cancelling twice is a no-op, shipped is a 409."""
    return OrderDetail.model_validate(await OrderRepository(session).cancel(order_id))
