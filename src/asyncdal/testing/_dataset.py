"""A realistic, deterministic demo dataset, written with the bulk (COPY) path.

:func:`generate_dataset` builds every row in memory from a seeded ``random.Random``: the same
``scale`` and ``random_seed`` give the same rows (timestamps are relative to the moment of loading).
The shape is what the seed dashboards need: follower counts skewed (a few users are followed by
many), posts spread over the last 30 days (so "last 7 days" selects about a quarter of them),
hashtags Zipf-like, likes concentrated on some posts, and orders whose ``total`` is the sum of their
items. Counters equal the rows they count: ``users.follower_count`` = follows of that user,
``posts.like_count`` = likes of that post.

:func:`load_dataset` writes the rows in one transaction (all or nothing, also on Ctrl-C), skips a
database that already holds data, then runs ``ANALYZE`` so the planner sees the new tables.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.schema import AddConstraint, DropConstraint

from asyncdal._base import Base
from asyncdal._database import Database
from asyncdal._repository.bulk import copy_records
from asyncdal._session import DALSession
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderItem, OrderStatus, Product
from asyncdal.social import Follow, Hashtag, Like, Post, PostHashtag

__all__ = ["Dataset", "LoadResult", "Sizes", "generate_dataset", "load_dataset", "table_counts"]

#: Called as ``progress(table, rows_written, rows_total)`` while seeding.
Progress = Callable[[str, int, int], None]


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_WORDS = _split(
    "async await python postgres query index pool session latency coffee deploy release weekend"
    " music travel photo sunset code review bug fix team launch design data cloud garden book"
    " movie game run bike city night morning lunch dinner friends family"
)
_TOPICS = _split(
    "python postgres asyncio sqlalchemy fastapi devops cloud data ml rust golang webdev opensource"
    " linux docker kubernetes security testing design ux startup coffee music travel photography"
    " food fitness books movies gaming science space climate art"
)
_ADJECTIVES = _split("red blue green small large classic modern eco smart compact deluxe basic")
_NOUNS = _split("mug lamp chair desk notebook pen backpack bottle speaker cable charger stand")
_STATUSES = (OrderStatus.PAID, OrderStatus.SHIPPED, OrderStatus.PENDING, OrderStatus.CANCELLED)
_STATUS_WEIGHTS = (60, 25, 10, 5)
_DAYS = 30


@dataclass(frozen=True)
class Sizes:
    """How many rows of each kind ``scale`` asks for (``scale=1``: 10k users, 100k posts...)."""

    users: int
    posts: int
    hashtags: int
    products: int
    orders: int

    @classmethod
    def for_scale(cls, scale: float) -> Sizes:
        """Sizes for ``scale`` (> 0), with small floors so tiny scales still make sense."""
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        return cls(
            users=max(20, round(10_000 * scale)),
            posts=max(100, round(100_000 * scale)),
            hashtags=max(10, min(len(_TOPICS) * 20, round(600 * scale))),
            products=max(10, round(1_000 * scale)),
            orders=max(20, round(20_000 * scale)),
        )


@dataclass
class Dataset:
    """Rows per model, as tuples in the order of ``COLUMNS[model]``; ids assigned from 1."""

    rows: dict[type[Base], list[tuple[Any, ...]]] = field(default_factory=dict)

    def count(self, model: type[Base]) -> int:
        """How many rows of ``model`` the dataset holds."""
        return len(self.rows.get(model, []))


#: Column order of the generated tuples, per model; also the insert order (parents first).
COLUMNS: dict[type[Base], tuple[str, ...]] = {
    User: ("id", "username", "email", "display_name", "verified", "follower_count", "created_at"),
    Follow: ("follower_id", "followee_id", "created_at"),
    Hashtag: ("id", "tag"),
    Post: ("id", "author_id", "body", "like_count", "created_at"),
    PostHashtag: ("post_id", "hashtag_id"),
    Like: ("user_id", "post_id", "created_at"),
    Product: ("id", "sku", "name", "price", "stock", "created_at"),
    Order: ("id", "user_id", "status", "total", "created_at"),
    OrderItem: ("order_id", "product_id", "quantity", "unit_price"),
}


def _zipf_cum_weights(n: int, exponent: float) -> list[float]:
    """Cumulative weights 1/rank**exponent for ranks 1..n (for ``Random.choices``)."""
    total = 0.0
    cumulative = []
    for rank in range(1, n + 1):
        total += 1.0 / rank**exponent
        cumulative.append(total)
    return cumulative


def _distinct(rng: random.Random, ids: Sequence[int], cum: list[float], k: int) -> list[int]:
    """Up to ``k`` distinct ids drawn with the skew ``cum``."""
    return list(dict.fromkeys(rng.choices(ids, cum_weights=cum, k=k)))


def generate_dataset(
    scale: float = 1.0, *, random_seed: int = 42, now: datetime | None = None
) -> Dataset:
    """Build the demo dataset in memory; the same ``scale`` and ``random_seed``, the same rows."""
    sizes = Sizes.for_scale(scale)
    rng = random.Random(random_seed)
    now = now or datetime.now(UTC)
    data = Dataset()

    def moment(days: float) -> datetime:
        return now - timedelta(seconds=rng.uniform(0, days * 86_400))

    user_ids = list(range(1, sizes.users + 1))
    # Popularity: a random permutation of users ranked Zipf-like; few stars, a long tail.
    by_popularity = user_ids[:]
    rng.shuffle(by_popularity)
    popularity = _zipf_cum_weights(sizes.users, 1.0)

    follows: list[tuple[Any, ...]] = []
    for follower in user_ids:
        wanted = min(sizes.users - 1, int(rng.paretovariate(1.5) * 4))
        followees = _distinct(rng, by_popularity, popularity, wanted + 1)
        follows += [(follower, f, moment(_DAYS * 6)) for f in followees if f != follower]
    follower_count = Counter(row[1] for row in follows)
    stars = set(by_popularity[: max(1, sizes.users // 100)])
    data.rows[User] = [
        (
            uid,
            f"user{uid:06d}",
            f"user{uid:06d}@example.org",
            f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
            uid in stars,
            follower_count[uid],
            moment(365),
        )
        for uid in user_ids
    ]
    data.rows[Follow] = follows

    tags = [
        f"{_TOPICS[i % len(_TOPICS)]}{'' if i < len(_TOPICS) else i // len(_TOPICS)}"
        for i in range(sizes.hashtags)
    ]
    data.rows[Hashtag] = [(i + 1, tag) for i, tag in enumerate(tags)]
    hashtag_ids = list(range(1, sizes.hashtags + 1))
    tag_weights = _zipf_cum_weights(sizes.hashtags, 1.1)

    # Active authors are skewed too, independently of popularity.
    authors = user_ids[:]
    rng.shuffle(authors)
    activity = _zipf_cum_weights(sizes.users, 0.8)
    posts: list[tuple[Any, ...]] = []
    post_tags: list[tuple[Any, ...]] = []
    likes: list[tuple[Any, ...]] = []
    author_of = rng.choices(authors, cum_weights=activity, k=sizes.posts)
    for post_id, author in enumerate(author_of, start=1):
        created = moment(_DAYS)
        chosen = _distinct(rng, hashtag_ids, tag_weights, rng.choice((0, 1, 1, 2, 2, 3)))
        words = " ".join(rng.choices(_WORDS, k=rng.randint(4, 14)))
        body = words + "".join(f" #{tags[h - 1]}" for h in chosen)
        # Most posts get a few likes, some get many (heavier for followed authors).
        n_likes = min(sizes.users, int(rng.paretovariate(1.3)) - 1 + follower_count[author] // 50)
        likers = rng.sample(user_ids, n_likes) if n_likes > 0 else []
        ages = (now - created).total_seconds()
        likes += [(u, post_id, created + timedelta(seconds=rng.uniform(0, ages))) for u in likers]
        posts.append((post_id, author, body, len(likers), created))
        post_tags += [(post_id, h) for h in chosen]
    data.rows[Post] = posts
    data.rows[PostHashtag] = post_tags
    data.rows[Like] = likes

    prices = [Decimal(rng.randint(199, 49_999)) / 100 for _ in range(sizes.products)]
    data.rows[Product] = [
        (
            pid,
            f"SKU-{pid:06d}",
            f"{rng.choice(_ADJECTIVES).title()} {rng.choice(_NOUNS)} {pid}",
            prices[pid - 1],
            0 if rng.random() < 0.05 else rng.randint(1, 1_000),
            moment(365),
        )
        for pid in range(1, sizes.products + 1)
    ]
    product_ids = list(range(1, sizes.products + 1))
    orders: list[tuple[Any, ...]] = []
    items: list[tuple[Any, ...]] = []
    buyers = rng.choices(authors, cum_weights=activity, k=sizes.orders)
    for order_id, buyer in enumerate(buyers, start=1):
        lines = rng.sample(product_ids, min(len(product_ids), rng.randint(1, 4)))
        order_items = [(order_id, p, rng.randint(1, 3), prices[p - 1]) for p in lines]
        total = sum((qty * price for _, _, qty, price in order_items), Decimal("0.00"))
        status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
        orders.append((order_id, buyer, status.value, total, moment(_DAYS * 3)))
        items += order_items
    data.rows[Order] = orders
    data.rows[OrderItem] = items
    return data


@dataclass(frozen=True)
class LoadResult:
    """What :func:`seed` did: ``skipped`` when the database already held data."""

    skipped: bool
    counts: dict[str, int]
    reason: str = ""


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def table_counts(db: Database) -> dict[str, int]:
    """Rows per domain table (exact ``count(*)``)."""
    async with db.session() as session:
        counts = {}
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(
                (await session.execute(select(func.count()).select_from(table))).scalar_one()
            )
        return counts


async def _reset_identities(session: DALSession) -> None:
    """Move each identity past the ids the dataset assigned, so later inserts do not clash."""
    for model in (User, Hashtag, Post, Product, Order):
        table = _table(model)
        await session.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, "id"),
                    select(func.coalesce(func.max(table.c.id), 0) + 1).scalar_subquery(),
                    False,
                )
            )
        )


async def load_dataset(
    db: Database,
    scale: float = 1.0,
    *,
    random_seed: int = 42,
    progress: Progress | None = None,
    chunk: int = 20_000,
) -> LoadResult:
    """Write the demo dataset into ``db`` (migrated, empty) and ``ANALYZE`` it.

    Skips (``LoadResult.skipped``) when any domain table already has rows: running it twice
    never duplicates data. Everything is written in one transaction.
    """
    counts = await table_counts(db)
    if any(counts.values()):
        busy = ", ".join(f"{name}={n}" for name, n in counts.items() if n)
        return LoadResult(True, counts, f"the database already has data ({busy})")
    data = generate_dataset(scale, random_seed=random_seed)
    total = sum(len(rows) for rows in data.rows.values())
    done = 0
    foreign_keys = [fk for t in Base.metadata.sorted_tables for fk in t.foreign_key_constraints]
    async with db.session() as session:
        connection = await session.connection()
        # Checking foreign keys row by row (a trigger per row and key) costs two thirds of the
        # load; re-adding the constraints afterwards validates every row in one join per key.
        # Same transaction: nobody sees the tables without their constraints.
        for fk in foreign_keys:
            await connection.execute(DropConstraint(fk))
        for model in COLUMNS:
            rows = data.rows[model]
            for start in range(0, len(rows), chunk):
                await copy_records(
                    session, _table(model), COLUMNS[model], rows[start : start + chunk]
                )
                done += len(rows[start : start + chunk])
                if progress is not None:
                    progress(_table(model).name, done, total)
        for fk in foreign_keys:
            await connection.execute(AddConstraint(fk))
        await _reset_identities(session)
    async with db.engine.connect() as conn:
        # ANALYZE is not a query built from input: no parameters, fixed text.
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return LoadResult(False, {_table(m).name: data.count(m) for m in COLUMNS})
