"""Run the benchmarks B1..B4 (the same as `asyncdal bench`); see README "Benchmarks".

    python benchmarks/run.py            # full: scale-1 dataset, 9 interleaved rounds
    python benchmarks/run.py --quick    # under 2 minutes: smaller dataset, 5 rounds

With no DATABASE_URL a throwaway PostgreSQL server is started. Results: benchmarks/results/.
"""

from __future__ import annotations

import sys

from asyncdal._cli import main

if __name__ == "__main__":
    main(["bench", *sys.argv[1:]])
