"""The endpoints: seed 000's ``/users/ /orders/ /products/ /all/``, seed 002's ``/dashboard``,
a user profile, and placing, cancelling and registering.

Single reads and writes take one session per request (:data:`SessionDep`: committed when the
endpoint returns). Endpoints that read several things at once fan out with ``db.gather``, one
session per read, instead of sharing one connection the way seed 002 does.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Path, status

from asyncdal import Base, Page, Repository
from asyncdal.accounts import UserRepository
from asyncdal.commerce import OrderRepository, ProductRepository
from examples.storefront.deps import SessionDep
from examples.storefront.listing import Listing, listing
from examples.storefront.schemas import (
    ErrorBody,
    NewOrder,
    NewUser,
    OrderDetail,
    OrderPage,
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
async def get_product(session: SessionDep, product_id: IdPath) -> ProductOut:
    """One product with its current stock."""
    return ProductOut.model_validate(await ProductRepository(session).get(product_id))


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
