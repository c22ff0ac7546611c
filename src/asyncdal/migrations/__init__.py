"""Alembic migration scripts for asyncdal's schema (``script_location = asyncdal:migrations``)."""
