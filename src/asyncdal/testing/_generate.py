"""The demo dataset, generated in batches: deterministic, realistic, memory bounded by a batch.

:func:`generate_batches` yields the rows table by table in batches of at most ``batch`` rows,
from a seeded ``random.Random``: the same ``scale`` and ``random_seed`` give the same rows
(timestamps are relative to ``now``). Only per-user and per-product numbers are kept between
batches, so memory does not grow with the number of rows. The shape is what the seed dashboards
need: follower counts skewed (a few users are followed by many), posts spread over the last 30
days (so "last 7 days" selects about a quarter of them), hashtags Zipf-like, likes concentrated
on some posts, and orders whose ``total`` is the sum of their items. Counters equal the rows they
count: ``users.follower_count`` = follows of that user, ``posts.like_count`` = likes of that post.

The rows come out in an order the loader can stream (follows before the users they count); the
loader drops the foreign keys for the load, so no parent has to come first.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from asyncdal._base import Base
from asyncdal.accounts import User
from asyncdal.commerce import Order, OrderItem, OrderStatus, Product
from asyncdal.social import Follow, Hashtag, Like, Post, PostHashtag

__all__ = ["COLUMNS", "Batch", "Dataset", "Sizes", "generate_batches", "generate_dataset"]


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
# Progress weights (half-rows): see generate_batches.
_ROW, _FOLLOWER, _POST, _ORDER = 2, 22, 11, 7


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


@dataclass(frozen=True)
class Batch:
    """Rows of one model, and how far the generation is (``done`` of ``total`` steps)."""

    model: type[Base]
    rows: list[tuple[Any, ...]]
    done: int
    total: int


class _Buffers:
    """Rows waiting per model; full ones go out as batches."""

    def __init__(self, size: int, total: int) -> None:
        self.size = size
        self.total = total
        self.done = 0
        self.rows: dict[type[Base], list[tuple[Any, ...]]] = {}

    def add(self, model: type[Base], rows: list[tuple[Any, ...]]) -> Iterator[Batch]:
        buffer = self.rows.setdefault(model, [])
        buffer += rows
        if len(buffer) >= self.size:
            yield from self.flush(model)

    def flush(self, *models: type[Base]) -> Iterator[Batch]:
        for model in models or tuple(self.rows):
            rows = self.rows.pop(model, [])
            if rows:
                yield Batch(model, rows, self.done, self.total)


def generate_batches(
    scale: float = 1.0,
    *,
    random_seed: int = 42,
    now: datetime | None = None,
    batch: int = 5_000,
) -> Iterator[Batch]:
    """The demo dataset as batches of at most about ``batch`` rows each, in a streamable order."""
    sizes = Sizes.for_scale(scale)
    rng = random.Random(random_seed)
    now = now or datetime.now(UTC)
    # Progress steps weigh each entity by about the rows it brings (a follower ~11 follows, a
    # post ~5 rows with its likes and tags, an order ~3.5 with its items), so time moves evenly.
    steps = (
        _FOLLOWER * sizes.users
        + _ROW * (sizes.users + sizes.hashtags + sizes.products)
        + _POST * sizes.posts
        + _ORDER * sizes.orders
    )
    out = _Buffers(batch, steps)

    def moment(days: float) -> datetime:
        return now - timedelta(seconds=rng.uniform(0, days * 86_400))

    user_ids = list(range(1, sizes.users + 1))
    # Popularity: a random permutation of users ranked Zipf-like; few stars, a long tail.
    by_popularity = user_ids[:]
    rng.shuffle(by_popularity)
    popularity = _zipf_cum_weights(sizes.users, 1.0)

    follower_count: Counter[int] = Counter()
    for follower in user_ids:
        wanted = min(sizes.users - 1, int(rng.paretovariate(1.5) * 4))
        followees = _distinct(rng, by_popularity, popularity, wanted + 1)
        rows = [(follower, f, moment(_DAYS * 6)) for f in followees if f != follower]
        follower_count.update(row[1] for row in rows)
        out.done += _FOLLOWER
        yield from out.add(Follow, rows)
    yield from out.flush(Follow)

    stars = set(by_popularity[: max(1, sizes.users // 100)])
    for uid in user_ids:
        out.done += _ROW
        first, last = rng.choice(_WORDS).title(), rng.choice(_WORDS).title()
        row = (
            uid,
            f"user{uid:06d}",
            f"user{uid:06d}@example.org",
            f"{first} {last}",
            uid in stars,
            follower_count[uid],
            moment(365),
        )
        yield from out.add(User, [row])
    yield from out.flush(User)

    tags = [
        f"{_TOPICS[i % len(_TOPICS)]}{'' if i < len(_TOPICS) else i // len(_TOPICS)}"
        for i in range(sizes.hashtags)
    ]
    out.done += _ROW * sizes.hashtags
    yield from out.add(Hashtag, [(i + 1, tag) for i, tag in enumerate(tags)])
    yield from out.flush(Hashtag)
    hashtag_ids = list(range(1, sizes.hashtags + 1))
    tag_weights = _zipf_cum_weights(sizes.hashtags, 1.1)

    # Active authors are skewed too, independently of popularity.
    authors = user_ids[:]
    rng.shuffle(authors)
    activity = _zipf_cum_weights(sizes.users, 0.8)
    for post_id in range(1, sizes.posts + 1):
        author = rng.choices(authors, cum_weights=activity)[0]
        created = moment(_DAYS)
        chosen = _distinct(rng, hashtag_ids, tag_weights, rng.choice((0, 1, 1, 2, 2, 3)))
        words = " ".join(rng.choices(_WORDS, k=rng.randint(4, 14)))
        body = words + "".join(f" #{tags[h - 1]}" for h in chosen)
        # Most posts get a few likes, some get many (heavier for followed authors).
        n_likes = min(sizes.users, int(rng.paretovariate(1.3)) - 1 + follower_count[author] // 50)
        likers = rng.sample(user_ids, n_likes) if n_likes > 0 else []
        ages = (now - created).total_seconds()
        out.done += _POST
        yield from out.add(
            Like, [(u, post_id, created + timedelta(seconds=rng.uniform(0, ages))) for u in likers]
        )
        yield from out.add(PostHashtag, [(post_id, h) for h in chosen])
        yield from out.add(Post, [(post_id, author, body, len(likers), created)])
    yield from out.flush(Post, PostHashtag, Like)

    prices = [Decimal(rng.randint(199, 49_999)) / 100 for _ in range(sizes.products)]
    for pid in range(1, sizes.products + 1):
        out.done += _ROW
        stock = 0 if rng.random() < 0.05 else rng.randint(1, 1_000)
        name = f"{rng.choice(_ADJECTIVES).title()} {rng.choice(_NOUNS)} {pid}"
        product = (pid, f"SKU-{pid:06d}", name, prices[pid - 1], stock, moment(365))
        yield from out.add(Product, [product])
    yield from out.flush(Product)

    product_ids = list(range(1, sizes.products + 1))
    for order_id in range(1, sizes.orders + 1):
        buyer = rng.choices(authors, cum_weights=activity)[0]
        lines = rng.sample(product_ids, min(len(product_ids), rng.randint(1, 4)))
        items = [(order_id, p, rng.randint(1, 3), prices[p - 1]) for p in lines]
        total = sum((qty * price for _, _, qty, price in items), Decimal("0.00"))
        status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
        out.done += _ORDER
        yield from out.add(OrderItem, items)
        yield from out.add(Order, [(order_id, buyer, status.value, total, moment(_DAYS * 3))])
    yield from out.flush(Order, OrderItem)


def generate_dataset(
    scale: float = 1.0, *, random_seed: int = 42, now: datetime | None = None
) -> Dataset:
    """The whole demo dataset in memory (small scales, tests): :func:`generate_batches`' rows."""
    data = Dataset()
    for batch in generate_batches(scale, random_seed=random_seed, now=now):
        data.rows.setdefault(batch.model, []).extend(batch.rows)
    return data
