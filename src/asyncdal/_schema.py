"""asyncdal's own schema: importing this module registers every domain model on ``Base``.

The migrations and ``check_schema`` compare against ``Base.metadata``; the domain models land in
it when their modules are imported, so those two import this module rather than each package.
"""

from asyncdal import accounts, commerce, social
from asyncdal._base import Base

__all__ = ["Base", "accounts", "commerce", "social"]
