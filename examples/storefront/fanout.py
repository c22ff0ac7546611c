"""The endpoints that read several things at once: each read gets its own session.

``/all/`` is seed 000's ``asyncio.gather`` of three queries and ``/dashboard`` is seed 002's,
done the way neither seed does it safely: ``db.gather`` hands every read its own
``AsyncSession`` (and so its own pooled connection), bounds how many run at once, and closes
every session before returning, also when one read fails.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from asyncdal.commerce import StorefrontOverview
from asyncdal.fastapi import DatabaseDep
from asyncdal.social import SocialDashboard, UserProfile
from examples.storefront.schemas import Dashboard, ErrorBody, Overview, Profile

__all__ = ["router"]

router = APIRouter()

_ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (404, 422, 500, 503, 504)
}
#: The read models accept up to 1000 rows per read; an HTTP page stays smaller.
_MAX_ROWS = 500
#: The read models' longest window (ten years).
_MAX_DAYS = 3650


@router.get("/all/", response_model=Overview, responses=_ERRORS)
async def read_all(
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=_MAX_ROWS, description="rows of each list")] = 50,
) -> Overview:
    """The first page of ``/users/``, ``/orders/`` and ``/products/`` (by id), read concurrently."""
    return Overview.model_validate(await StorefrontOverview.load(db, limit=limit))


@router.get("/dashboard", response_model=Dashboard, responses=_ERRORS)
async def dashboard(
    db: DatabaseDep,
    top: Annotated[int, Query(ge=1, le=100, description="how many top users")] = 5,
    days: Annotated[int, Query(ge=1, le=_MAX_DAYS, description="window, in days")] = 7,
    trending: Annotated[int, Query(ge=1, le=100, description="how many hashtags")] = 10,
    consistent: Annotated[
        bool, Query(description="read the three from one snapshot, so they agree")
    ] = False,
) -> Dashboard:
    """Top users by followers, trending hashtags and platform stats, read concurrently."""
    result = await SocialDashboard.load(
        db, top=top, days=days, trending=trending, consistent=consistent
    )
    return Dashboard.model_validate(result)


@router.get("/users/{user_id}", response_model=Profile, responses=_ERRORS)
async def profile(
    db: DatabaseDep,
    user_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    posts: Annotated[int, Query(ge=1, le=100, description="how many recent posts")] = 10,
    orders: Annotated[int, Query(ge=1, le=100, description="how many recent orders")] = 10,
) -> Profile:
    """A user with their recent posts and orders; 404 when there is no such user."""
    return Profile.model_validate(await UserProfile.load(db, user_id, posts=posts, orders=orders))
