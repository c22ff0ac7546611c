"""The generic repository: typed data access for one model, filters, pages and bulk inserts."""

from asyncdal._repository.base import Repository
from asyncdal._repository.filters import Filter, WhereSpec
from asyncdal._repository.pagination import Page
from asyncdal._repository.reads import ReadRepository

__all__ = ["Filter", "Page", "ReadRepository", "Repository", "WhereSpec"]
