"""Declarative models of the domain: accounts, social and commerce."""

from asyncdal._models.accounts import User
from asyncdal._models.base import Base
from asyncdal._models.commerce import Order, OrderItem, OrderStatus, Product
from asyncdal._models.social import Follow, Hashtag, Like, Post, PostHashtag

__all__ = [
    "Base",
    "Follow",
    "Hashtag",
    "Like",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Post",
    "PostHashtag",
    "Product",
    "User",
]
