"""Side-by-side benchmarks: que against pgqueuer, procrastinate and raw psycopg.

    python -m bench.compare                     # every workload, 3 runs, full size
    python -m bench.compare --scale 0.05 --runs 1 --only W1,W3

Not part of the test suite; needs the ``bench`` extra (``pip install -e '.[bench]'``)
and a PostgreSQL server. See ``docs/reference/performance.md`` for the method.
"""
