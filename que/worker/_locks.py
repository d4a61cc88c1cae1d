"""Advisory locks: the locker's id locks, and each worker's own lock on the job it runs.

The locker calls the functions here on its dedicated connection, which holds
every id lock of the process (a lock keyed by the job id, as Ruby Que's). A
worker takes a :class:`WorkerLock` on its own connection at the start of each
transaction of its job: the second lock that keeps a job from running in two
processes, and from committing, should the id lock be lost (see ``que._core.sql``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from que._core import db, sql
from que._core.connection import Connection
from que._core.log import log_event


def try_lock(connection: Connection, ids: Collection[int]) -> list[int]:
    """Lock again what can be locked of ``ids``, jobs this process's workers run."""
    if not ids:
        return []
    return _locked_ids(db.run(connection, sql.RELOCK_JOBS, {"ids": list(ids)}))


def _locked_ids(results: list[dict[str, Any]]) -> list[int]:
    """The ids a lock statement could lock."""
    return [row["id"] for row in results if row["locked"]]


def unlock(connection: Connection, ids: Iterable[int]) -> None:
    """Release locks this connection holds, in one statement."""
    ids = list(ids)
    if not ids:
        return
    rows = db.run(connection, sql.UNLOCK_JOBS, {"ids": ids})
    missing = [row["id"] for row in rows if not row["unlocked"]]
    if missing:
        log_event(
            logging.WARNING,
            "job_unlock_failed",
            job_ids=missing,
            detail="the locker did not hold these locks",
        )


def lock_rows(
    connection: Connection, ids: Collection[int], now: datetime | None
) -> list[dict[str, Any]]:
    """Lock announced jobs no worker runs and read their keys, in one round trip.

    The keys are read by a second statement, which sees what was committed
    before it began, so after the locks were taken: a job finished just before
    it was locked is let go again.
    """
    if not ids:
        return []
    results, rows = db.run_together(
        connection,
        [
            (sql.LOCK_JOBS, {"ids": list(ids)}),
            (sql.CHECK_LOCKED_JOBS, {"ids": list(ids), "now": now}),
        ],
    )
    locked = _locked_ids(results)
    found = {row["id"]: row for row in rows}
    gone = [job_id for job_id in locked if job_id not in found]
    if gone:
        unlock(connection, gone)
        log_event(logging.DEBUG, "jobs_gone_after_lock", internal=True, job_ids=gone)
    return [found[job_id] for job_id in locked if job_id in found]


@dataclass(frozen=True)
class WorkerLock:
    """A worker's own lock on job ``job_id`` (a :class:`que._core.running.Guard`)."""

    job_id: int
    now: datetime | None
    """The job clock's time when the worker took the job: the row must be ready then."""

    def claim(self, connection: Connection) -> dict[str, Any] | None:
        """Take the lock and read the row, in one statement; ``None`` if a worker of
        another process holds the lock or the job is no longer there to run."""
        (row,) = db.run(connection, sql.CLAIM_AND_READ_JOB, {"id": self.job_id, "now": self.now})
        claimed = row.pop("claimed")
        if not claimed:
            log_event(
                logging.WARNING,
                "job_lock_lost",
                job_ids=[self.job_id],
                detail="a worker of another process is running this job, which this "
                "process had locked before its lock connection was lost; "
                "it is not run here",
            )
            return None
        if row["id"] is None:
            log_event(logging.DEBUG, "jobs_gone_after_lock", internal=True, job_ids=[self.job_id])
            return None
        return row

    def reclaim(self, connection: Connection) -> bool:
        (claim,) = db.run(connection, sql.CLAIM_JOB, {"id": self.job_id})
        return bool(claim["claimed"])
