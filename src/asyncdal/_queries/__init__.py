"""Read models: the seeds' queries as typed, read-only reads, and the dashboards built on them."""

from asyncdal._queries.dashboards import (
    SocialDashboard,
    StorefrontOverview,
    UserProfile,
    social_dashboard,
    social_dashboard_sequential,
    storefront_overview,
    storefront_overview_sequential,
    user_profile,
    user_profile_sequential,
)
from asyncdal._queries.profile import ProfileQueries
from asyncdal._queries.results import (
    OrderSummary,
    PlatformStats,
    PostSummary,
    ProductSummary,
    TopUser,
    TrendingHashtag,
    UserSummary,
)
from asyncdal._queries.social import SocialQueries
from asyncdal._queries.storefront import StorefrontQueries

__all__ = [
    "OrderSummary",
    "PlatformStats",
    "PostSummary",
    "ProductSummary",
    "ProfileQueries",
    "SocialDashboard",
    "SocialQueries",
    "StorefrontOverview",
    "StorefrontQueries",
    "TopUser",
    "TrendingHashtag",
    "UserProfile",
    "UserSummary",
    "social_dashboard",
    "social_dashboard_sequential",
    "storefront_overview",
    "storefront_overview_sequential",
    "user_profile",
    "user_profile_sequential",
]
