"""Exactly-once accounting shared by every system's benchmark job.

Every benchmark job, whatever the queue, does the same work: it writes its job
number into ``bench_done`` with one statement, optionally announcing it on the
``bench_done`` channel (the latency workload waits for that). The table has no
unique key on purpose: a job that ran twice leaves two rows instead of failing
its second run, so a double execution can never hide behind a retry. A run
counts only if every expected number is there exactly once.

The table is UNLOGGED so the bookkeeping adds no WAL flush to any system's
commit; it is the same one-row write for all of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

CHANNEL = "bench_done"

CREATE_TABLE = """
CREATE UNLOGGED TABLE bench_done (
  n integer NOT NULL,
  started_at double precision NOT NULL,
  done_at double precision NOT NULL DEFAULT extract(epoch FROM clock_timestamp())
)
"""

# One round trip whatever the job: the insert, and the notification only when asked.
RECORD_JOB = """
WITH done AS (
  INSERT INTO bench_done (n, started_at) VALUES (%(n)s, %(started_at)s) RETURNING n
)
SELECT pg_notify('bench_done', done.n::text) FROM done WHERE %(notify)s
"""

TALLY = """
SELECT count(*) AS count, count(DISTINCT n) AS distinct_count,
       min(n) AS lowest, max(n) AS highest,
       min(done_at) AS first_done, max(done_at) AS last_done
FROM bench_done
"""

COUNT = "SELECT count(*) FROM bench_done"

STARTED_AT = "SELECT n, started_at FROM bench_done"


def record_params(n: int, notify: bool, started_at: float | None = None) -> dict[str, Any]:
    """The parameters of :data:`RECORD_JOB`; ``started_at`` defaults to now (epoch seconds)."""
    return {
        "n": n,
        "notify": notify,
        "started_at": time.time() if started_at is None else started_at,
    }


@dataclass(frozen=True)
class Tally:
    """What ``bench_done`` holds."""

    count: int
    distinct_count: int
    lowest: int | None
    highest: int | None
    first_done: float | None
    last_done: float | None

    def problem(self, expected: range) -> str | None:
        """Why this is not every number of ``expected`` exactly once (None: it is)."""
        if self.count != self.distinct_count:
            return f"{self.count - self.distinct_count} job(s) ran more than once"
        if self.count != len(expected):
            return f"{self.count} of {len(expected)} jobs ran"
        if len(expected) and (self.lowest, self.highest) != (expected[0], expected[-1]):
            return f"ran jobs {self.lowest}..{self.highest}, expected {expected[0]}..{expected[-1]}"
        return None


def tally(connection: psycopg.Connection[Any]) -> Tally:
    row = connection.execute(TALLY).fetchone()
    assert row is not None
    return Tally(*row)


def count(connection: psycopg.Connection[Any]) -> int:
    """How many rows ``bench_done`` has: a cheap progress check while a worker runs."""
    row = connection.execute(COUNT).fetchone()
    return int(row[0]) if row else 0


def started_at(connection: psycopg.Connection[Any]) -> dict[int, float]:
    """Job number -> when its body started (epoch seconds, the worker's clock)."""
    return dict(connection.execute(STARTED_AT).fetchall())


class AsyncRecorder:
    """How the asyncio peers' jobs write their row: an autocommit pool, one round trip.

    Opened lazily in the worker's own event loop. Autocommit keeps the peers'
    bookkeeping at a single statement, as cheap as que's (whose row joins the
    transaction the job already has); it uses psycopg_pool's default size.
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = asyncio.Lock()

    async def record(self, n: int, notify: bool, started_at: float) -> None:
        pool = await self._open()
        async with pool.connection() as connection:
            await connection.execute(RECORD_JOB, record_params(n, notify, started_at))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _open(self) -> AsyncConnectionPool[Any]:
        async with self._opening:
            if self._pool is None:
                pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                    self._dsn, kwargs={"autocommit": True}, open=False
                )
                await pool.open(wait=True)
                self._pool = pool
            return self._pool
