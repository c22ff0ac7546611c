"""Accounts: the users of the social network and the shop.

Example::

    from asyncdal.accounts import UserRepository

    async with db.session() as s:
        ada = await UserRepository(s).create(username="ada", email="ada@example.org")
"""

from asyncdal.accounts._models import User
from asyncdal.accounts._repository import UserRepository
from asyncdal.accounts._summary import UserSummary, user_columns

__all__ = ["User", "UserRepository", "UserSummary", "user_columns"]
