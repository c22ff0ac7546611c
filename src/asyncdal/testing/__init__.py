"""Test helpers for services built on asyncdal, and for asyncdal's own tests.

- :class:`EmbeddedPostgres`: a throwaway local PostgreSQL server (needs the server binaries).
- :func:`generate_dataset` / :func:`load_dataset`: the deterministic demo dataset, written
  with COPY (the demo, the benchmarks and the storefront example use it).

Not imported by ``import asyncdal``.
"""

from asyncdal.testing._dataset import (
    Dataset,
    LoadResult,
    Sizes,
    generate_dataset,
    load_dataset,
    table_counts,
)
from asyncdal.testing._embedded import EmbeddedPostgres

__all__ = [
    "Dataset",
    "EmbeddedPostgres",
    "LoadResult",
    "Sizes",
    "generate_dataset",
    "load_dataset",
    "table_counts",
]
