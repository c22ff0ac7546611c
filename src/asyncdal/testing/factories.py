"""factory-boy factories for asyncdal's models, bound to the running test's session.

Needs factory-boy (``pip install 'asyncdal[testing]'``). The plugin's ``session`` fixture sets
:data:`current_session`; outside it, set it yourself. Factories only ``session.add``
(persistence ``None``); :func:`create` adds and flushes, so the rows get their ids and server
defaults inside the test's rolled-back transaction::

    users = await create(UserFactory, n=100)

For data other connections must see (``db.gather``, requests through the plugin's
``app_client``), pass the database: the rows are committed in a unit of work of their own (the
``committed_db`` fixture empties every table after the test)::

    ada = await create_one(UserFactory, db=committed_db, username="ada")
"""

from asyncdal.testing._factories import (
    FollowFactory,
    HashtagFactory,
    LikeFactory,
    OrderFactory,
    OrderItemFactory,
    PostFactory,
    PostHashtagFactory,
    ProductFactory,
    UserFactory,
    create,
    create_one,
    current_session,
)

__all__ = [
    "FollowFactory",
    "HashtagFactory",
    "LikeFactory",
    "OrderFactory",
    "OrderItemFactory",
    "PostFactory",
    "PostHashtagFactory",
    "ProductFactory",
    "UserFactory",
    "create",
    "create_one",
    "current_session",
]
