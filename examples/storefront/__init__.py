"""The seed 000 storefront API as a FastAPI service on asyncdal (see ``app.py``)."""

from examples.storefront.app import create_app

__all__ = ["create_app"]
