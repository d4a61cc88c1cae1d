"""Accounting for the fault suite: what was lost, done twice, done at once, or left stuck."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from fault_jobs import SCHEMA, Ledger

from que import Que

# Two attempts of one key in two processes whose run bodies overlapped in time.
# An attempt whose process died has no end: it counts as lasting an instant.
CONCURRENT_KEYS = """
SELECT count(DISTINCT a.key)
FROM fault_attempts AS a
JOIN fault_attempts AS b
  ON a.key = b.key AND a.pid <> b.pid AND a.id < b.id
 AND a.started_at <= coalesce(b.ended_at, b.started_at)
 AND b.started_at <= coalesce(a.ended_at, a.started_at)
"""


@dataclass(frozen=True)
class Tally:
    jobs: int
    done: int
    lost: int
    """Jobs neither in the ledger nor still in que_jobs."""
    duplicated: int
    """Attempts that tried to commit work the ledger already held."""
    concurrent: int
    """Jobs run by two processes at the same moment."""
    stuck: int
    """Jobs still in que_jobs."""

    def __str__(self) -> str:
        return (
            f"jobs={self.jobs} done={self.done} lost={self.lost} "
            f"duplicated={self.duplicated} concurrent={self.concurrent} stuck={self.stuck}"
        )


def reset(connection: psycopg.Connection[Any]) -> None:
    connection.execute(SCHEMA)
    connection.execute("TRUNCATE fault_ledger, fault_attempts")


def enqueue(count: int, sleep: float = 0.0) -> list[str]:
    """Enqueue ``count`` Ledger jobs (each sleeping ``sleep`` s) in one insert; their keys."""
    keys = [f"job-{n}" for n in range(count)]
    with Que.bulk_enqueue():
        for key in keys:
            Ledger.enqueue(key, sleep)
    return keys


def tally(
    connection: psycopg.Connection[Any], keys: Iterable[str], events: Iterable[dict[str, Any]]
) -> Tally:
    """Count the outcome of a run that enqueued one Ledger job per key."""
    expected = set(keys)
    done = {row[0] for row in connection.execute("SELECT key FROM fault_ledger")}
    waiting = {
        row[0]
        for row in connection.execute(
            "SELECT args->>0 FROM que_jobs WHERE job_class = 'fault_jobs.Ledger'"
        )
    }
    duplicated = sum(
        1
        for event in events
        if event.get("event") == "job_errored" and "UniqueViolation" in event.get("error", "")
    )
    concurrent = connection.execute(CONCURRENT_KEYS).fetchone()
    assert concurrent is not None
    return Tally(
        jobs=len(expected),
        done=len(done & expected),
        lost=len(expected - done - waiting),
        duplicated=duplicated,
        concurrent=int(concurrent[0]),
        stuck=len(waiting & expected),
    )
