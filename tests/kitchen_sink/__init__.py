"""A service's own models, migrated by its own Alembic environment: the kitchen sink.

Every column type a service uses every day, a composite primary key and a primary key not
named ``id``, on ``asyncdal.Base`` beside asyncdal's tables. ``tests/test_kitchen_sink.py`` runs
every repository verb over it.
"""
