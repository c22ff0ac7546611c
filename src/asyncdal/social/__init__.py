"""Social: follows, posts, hashtags and likes (seed 002's tables), their reads and dashboards.

Example::

    from asyncdal.social import PostRepository, SocialDashboard

    async with db.session() as s:
        await PostRepository(s).create(author_id=ada.id, body="hello", tags=["intro"])
    dashboard = await SocialDashboard.load(db, top=5, days=7)
"""

from asyncdal.social._models import Follow, Hashtag, Like, Post, PostHashtag
from asyncdal.social._profile import ProfileQueries
from asyncdal.social._queries import SocialQueries
from asyncdal.social._repositories import (
    FollowRepository,
    HashtagRepository,
    PostRepository,
    normalize_tags,
)
from asyncdal.social._results import PlatformStats, PostSummary, TopUser, TrendingHashtag
from asyncdal.social._views import SocialDashboard, UserProfile

__all__ = [
    "Follow",
    "FollowRepository",
    "Hashtag",
    "HashtagRepository",
    "Like",
    "PlatformStats",
    "Post",
    "PostHashtag",
    "PostRepository",
    "PostSummary",
    "ProfileQueries",
    "SocialDashboard",
    "SocialQueries",
    "TopUser",
    "TrendingHashtag",
    "UserProfile",
    "normalize_tags",
]
