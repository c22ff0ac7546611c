"""Test helpers for services built on asyncdal, and for asyncdal's own tests.

- :class:`EmbeddedPostgres`: a throwaway local PostgreSQL server (needs the server binaries);
  :class:`EmbeddedPostgresError` when it cannot be found, started or stopped.
- :func:`generate_batches` / :func:`load_dataset`: the deterministic demo dataset, generated
  batch by batch in a worker thread and streamed into COPY (the demo, the benchmarks and the
  storefront example use it); :func:`generate_dataset` holds it all in memory, for tests.

Not imported by ``import asyncdal``.
"""

from asyncdal.testing._dataset import LoadResult, load_dataset, table_counts
from asyncdal.testing._embedded import EmbeddedPostgres
from asyncdal.testing._errors import EmbeddedPostgresError
from asyncdal.testing._generate import Batch, Dataset, Sizes, generate_batches, generate_dataset

__all__ = [
    "Batch",
    "Dataset",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "LoadResult",
    "Sizes",
    "generate_batches",
    "generate_dataset",
    "load_dataset",
    "table_counts",
]
