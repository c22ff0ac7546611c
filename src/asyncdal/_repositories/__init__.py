"""Repositories: typed data access per model, and the domain's write operations."""

from asyncdal._repositories.accounts import UserRepository
from asyncdal._repositories.base import Repository
from asyncdal._repositories.commerce import OrderItems, OrderRepository, ProductRepository
from asyncdal._repositories.filters import Filter, WhereSpec
from asyncdal._repositories.pagination import Page
from asyncdal._repositories.social import HashtagRepository, PostRepository, normalize_tags

__all__ = [
    "Filter",
    "HashtagRepository",
    "OrderItems",
    "OrderRepository",
    "Page",
    "PostRepository",
    "ProductRepository",
    "Repository",
    "UserRepository",
    "WhereSpec",
    "normalize_tags",
]
