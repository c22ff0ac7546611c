"""The read models and the seed dashboards, on a small dataset whose numbers are checked by hand."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy.pool import QueuePool

from asyncdal import (
    DALSession,
    Database,
    InvalidQueryError,
    NotFoundError,
)
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderStatus, Product, StorefrontOverview, StorefrontQueries
from asyncdal.social import (
    Hashtag,
    PlatformStats,
    Post,
    PostHashtag,
    ProfileQueries,
    SocialDashboard,
    SocialQueries,
    TopUser,
    TrendingHashtag,
    UserProfile,
)

pytestmark = pytest.mark.committed


def _ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def _seed(db: Database) -> dict[str, Any]:
    """The hand-checked dataset.

    posts (age in days, likes, tags):       users (followers):
      p1 ada  1.0  10  python, async          ada 300 (verified)
      p2 ada  2.0   5  python                 bob 200
      p3 bob  3.0   0  async, sql             cy  100
      p5 bob  6.0   2  python, db             dee   0
      p4 cy  10.0 100  python    <- outside a 7-day window, inside 30 days
    last 7 days: 4 posts, 2 active users, 17 likes, avg 4.25;
                 python 3, async 2, db 1, sql 1 (ties by tag)
    last 30 days: 5 posts, 3 active users, 117 likes, avg 23.40; python 4
    """
    async with db.session() as s:
        ada = User(username="ada", email="ada@example.org", display_name="Ada", verified=True)
        ada.follower_count = 300
        bob = User(username="bob", email="bob@example.org", display_name="Bob", follower_count=200)
        cy = User(username="cy", email="cy@example.org", display_name="Cy", follower_count=100)
        dee = User(username="dee", email="dee@example.org", display_name="Dee", follower_count=0)
        s.add_all([ada, bob, cy, dee])
        tags = {t: Hashtag(tag=t) for t in ("python", "async", "sql", "db")}
        s.add_all(tags.values())
        await s.flush()
        posts = {
            "p1": Post(author_id=ada.id, body="one", like_count=10, created_at=_ago(1)),
            "p2": Post(author_id=ada.id, body="two", like_count=5, created_at=_ago(2)),
            "p3": Post(author_id=bob.id, body="three", like_count=0, created_at=_ago(3)),
            "p5": Post(author_id=bob.id, body="five", like_count=2, created_at=_ago(6)),
            "p4": Post(author_id=cy.id, body="four", like_count=100, created_at=_ago(10)),
        }
        s.add_all(posts.values())
        await s.flush()
        links = {
            "p1": ["python", "async"],
            "p2": ["python"],
            "p3": ["async", "sql"],
            "p5": ["python", "db"],
            "p4": ["python"],
        }
        s.add_all(
            PostHashtag(post_id=posts[p].id, hashtag_id=tags[t].id)
            for p, names in links.items()
            for t in names
        )
        products = [
            Product(sku="SKU-1", name="mug", price=Decimal("9.50"), stock=3),
            Product(sku="SKU-2", name="pen", price=Decimal("1.25"), stock=0),
            Product(sku="SKU-3", name="ink", price=Decimal("4.00"), stock=7),
        ]
        s.add_all(products)
        orders = [
            Order(user_id=ada.id, total=Decimal("10.75"), created_at=_ago(5)),
            Order(
                user_id=bob.id, total=Decimal("4.00"), status=OrderStatus.PAID, created_at=_ago(1)
            ),
            Order(
                user_id=ada.id,
                total=Decimal("9.50"),
                status=OrderStatus.SHIPPED,
                created_at=_ago(2),
            ),
        ]
        s.add_all(orders)
    return {
        "users": {"ada": ada, "bob": bob, "cy": cy, "dee": dee},
        "posts": posts,
        "products": products,
        "orders": orders,
    }


async def test_social_dashboard_numbers(committed_db: Database) -> None:
    data = await _seed(committed_db)
    ada, bob = data["users"]["ada"], data["users"]["bob"]

    dash = await SocialDashboard.load(committed_db, top=2, days=7, trending=10)

    assert dash.top_users == [
        TopUser(ada.id, "ada", "Ada", 300, True),
        TopUser(bob.id, "bob", "Bob", 200, False),
    ]
    assert dash.trending_hashtags == [
        TrendingHashtag("python", 3),
        TrendingHashtag("async", 2),
        TrendingHashtag("db", 1),
        TrendingHashtag("sql", 1),
    ]
    assert dash.stats == PlatformStats(
        days=7, total_posts=4, active_users=2, total_likes=17, avg_likes=Decimal("4.25")
    )

    wide = await SocialDashboard.load(committed_db, top=10, days=30, trending=1, consistent=True)
    assert [u.username for u in wide.top_users] == ["ada", "bob", "cy", "dee"]
    assert wide.trending_hashtags == [TrendingHashtag("python", 4)]
    assert wide.stats == PlatformStats(
        days=30, total_posts=5, active_users=3, total_likes=117, avg_likes=Decimal("23.40")
    )
    assert isinstance(wide.stats.avg_likes, Decimal)


async def test_views_reads_on_one_session_agree_with_the_fan_out(committed_db: Database) -> None:
    data = await _seed(committed_db)
    ada = data["users"]["ada"]
    async with committed_db.session() as s:
        top, trending, stats = SocialDashboard.reads(top=3, trending=3)
        social = SocialDashboard(await top(s), await trending(s), await stats(s))
        users, orders, products = StorefrontOverview.reads(limit=2)
        store = StorefrontOverview(await users(s), await orders(s), await products(s))
        user, posts, recent = UserProfile.reads(ada.id, posts=1, orders=5)
        profile = UserProfile(await user(s), await posts(s), await recent(s))
    assert social == await SocialDashboard.load(committed_db, top=3, days=7, trending=3)
    loaded = await StorefrontOverview.load(committed_db, limit=2)
    # Whole rows (ORM objects, compared by identity): compare their keys.
    assert [u.id for u in store.users] == [u.id for u in loaded.users]
    assert [o.id for o in store.orders] == [o.id for o in loaded.orders]
    assert [p.id for p in store.products] == [p.id for p in loaded.products]
    assert profile == await UserProfile.load(committed_db, ada.id, posts=1, orders=5)


async def test_storefront_overview_lists(committed_db: Database) -> None:
    data = await _seed(committed_db)
    users, products, orders = data["users"], data["products"], data["orders"]

    overview = await StorefrontOverview.load(committed_db, limit=50)

    assert [u.username for u in overview.users] == ["ada", "bob", "cy", "dee"]
    assert overview.users[0].id == users["ada"].id
    assert overview.users[0].follower_count == 300
    assert overview.users[0].email == users["ada"].email  # whole rows, as the lists give them
    # In id order, as UserRepository/OrderRepository/ProductRepository.list() give them.
    assert [(o.id, o.status, o.total) for o in overview.orders] == [
        (orders[0].id, OrderStatus.PENDING, Decimal("10.75")),
        (orders[1].id, OrderStatus.PAID, Decimal("4.00")),
        (orders[2].id, OrderStatus.SHIPPED, Decimal("9.50")),
    ]
    assert [(p.id, p.sku, p.price, p.stock) for p in overview.products] == [
        (products[0].id, "SKU-1", Decimal("9.50"), 3),
        (products[1].id, "SKU-2", Decimal("1.25"), 0),
        (products[2].id, "SKU-3", Decimal("4.00"), 7),
    ]
    async with committed_db.session() as s:
        page = await StorefrontQueries(s).users(limit=2, offset=1)
        assert [u.username for u in page] == ["bob", "cy"]
        assert await StorefrontQueries(s).products(limit=5, offset=3) == []
        assert [o.id for o in await StorefrontQueries(s).orders(limit=1, offset=2)] == [
            orders[0].id
        ]


async def test_user_profile(committed_db: Database) -> None:
    data = await _seed(committed_db)
    ada, dee = data["users"]["ada"], data["users"]["dee"]
    orders = data["orders"]

    profile = await UserProfile.load(committed_db, ada.id, posts=10, orders=10)

    assert profile.user.username == "ada"
    assert profile.user.follower_count == 300
    assert profile.user.verified is True
    assert [p.body for p in profile.recent_posts] == ["one", "two"]
    assert [p.like_count for p in profile.recent_posts] == [10, 5]
    assert [o.id for o in profile.recent_orders] == [orders[2].id, orders[0].id]

    empty = await UserProfile.load(committed_db, dee.id)
    assert (empty.user.username, empty.recent_posts, empty.recent_orders) == ("dee", [], [])

    with pytest.raises(NotFoundError) as caught:
        await UserProfile.load(committed_db, 10**12)
    assert caught.value.model == "User"
    assert caught.value.key == 10**12
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0


async def test_platform_stats_without_posts(session: DALSession) -> None:
    stats = await SocialQueries(session).platform_stats(days=1)
    assert stats == PlatformStats(
        days=1, total_posts=0, active_users=0, total_likes=0, avg_likes=Decimal("0.00")
    )
    assert await SocialQueries(session).trending_hashtags() == []
    with pytest.raises(NotFoundError):
        await ProfileQueries(session).user(-1)


async def test_results_are_frozen(session: DALSession) -> None:
    stats = await SocialQueries(session).platform_stats()
    with pytest.raises(FrozenInstanceError):
        stats.total_posts = 3  # type: ignore[misc]


@pytest.mark.parametrize("bad", [0, -1, 1001, True, "5", 2.0, None])
async def test_bad_limits_are_refused_before_any_query(bad: Any, db: Database) -> None:
    with pytest.raises(InvalidQueryError, match="top must be an integer"):
        await SocialDashboard.load(db, top=bad)
    with pytest.raises(InvalidQueryError, match="limit must be an integer"):
        await StorefrontOverview.load(db, limit=bad)
    with pytest.raises(InvalidQueryError, match="posts must be an integer"):
        await UserProfile.load(db, 1, posts=bad)
    async with db.session() as s:
        with pytest.raises(InvalidQueryError, match="limit must be an integer"):
            await StorefrontQueries(s).orders(limit=bad)
    assert cast(QueuePool, db.engine.pool).checkedout() == 0
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0


@pytest.mark.parametrize("bad", [0, -1, 3651, True, "7", 7.0, None])
async def test_bad_windows_are_refused(bad: Any, db: Database) -> None:
    with pytest.raises(InvalidQueryError, match="days must be an integer"):
        await SocialDashboard.load(db, days=bad)
    async with db.session() as s:
        with pytest.raises(InvalidQueryError, match="days must be an integer"):
            await SocialQueries(s).platform_stats(days=bad)


@pytest.mark.parametrize("bad", [-1, True, "0", 1.5, 2**63])
async def test_bad_offsets_are_refused(bad: Any, session: DALSession) -> None:
    with pytest.raises(InvalidQueryError, match="offset must be an integer"):
        await StorefrontQueries(session).users(offset=bad)


def test_queries_bind_values_and_use_the_window_on_the_server() -> None:
    stmt = SocialQueries.trending_hashtags_query(days=7, limit=3)
    sql = str(stmt.compile())
    assert "now()" in sql
    assert "7" not in sql  # the window and the limit are bound parameters
    assert set(stmt.compile().params.values()) >= {timedelta(days=7), 3}
