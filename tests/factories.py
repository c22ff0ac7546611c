"""The factories live in :mod:`asyncdal.testing.factories`; this name stays for older imports."""

from asyncdal.testing.factories import *  # noqa: F403
from asyncdal.testing.factories import __all__ as __all__
