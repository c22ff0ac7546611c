"""factory-boy factories for asyncdal's models, bound to the running test's session.

Needs factory-boy (``pip install 'asyncdal[testing]'``). The plugin's ``session`` fixture sets
:data:`current_session`; outside it, set it yourself. Factories only ``session.add``
(persistence ``None``); :func:`create` adds and flushes, so the rows get their ids and server
defaults inside the test's rolled-back transaction::

    users = await create(UserFactory, n=100)
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
