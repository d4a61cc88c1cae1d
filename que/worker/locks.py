"""Advisory locks on the locker's connection: take them, check the rows, give them back.

Only the locker thread calls these, on its dedicated connection, which holds
every lock of the process. A lock is keyed by the job id.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from que import db, sql
from que.connection import Connection
from que.log import log_event


def try_lock(connection: Connection, ids: Collection[int]) -> list[int]:
    """Lock what can be locked of ``ids`` (none of them held already); return those ids."""
    if not ids:
        return []
    return _locked_ids(db.run(connection, sql.LOCK_JOBS, {"ids": list(ids)}))


def _locked_ids(results: list[dict[str, Any]]) -> list[int]:
    """The ids LOCK_JOBS could lock."""
    return [row["id"] for row in results if row["locked"]]


def destroy(connection: Connection, ids: Collection[int]) -> None:
    """Delete the rows of jobs whose default destroy the pool took over.

    The lock connection is in autocommit mode, so the delete is committed before
    the locks are released: no other process can lock a job and still see its row.
    """
    if ids:
        db.run(connection, sql.DESTROY_JOBS, {"ids": list(ids)})


def unlock(connection: Connection, ids: Iterable[int]) -> None:
    """Release locks this connection holds, in one statement."""
    ids = list(ids)
    if not ids:
        return
    rows = db.run(connection, sql.UNLOCK_JOBS, {"ids": ids})
    missing = [row["id"] for row in rows if not row["unlocked"]]
    if missing:
        log_event(logging.WARNING, "job_unlock_failed", job_ids=missing,
                  detail="the locker did not hold these locks")


def lock_rows(
    connection: Connection, ids: Collection[int], now: datetime | None
) -> list[dict[str, Any]]:
    """Lock jobs and read their rows, in one round trip; return the rows to work.

    The rows are read by a second statement, which sees what was committed
    before it began, so after the locks were taken (see :func:`check_rows`).
    """
    if not ids:
        return []
    results, rows = db.run_together(connection, [
        (sql.LOCK_JOBS, {"ids": list(ids)}),
        (sql.CHECK_LOCKED_JOBS, {"ids": list(ids), "now": now}),
    ])
    return _still_there(connection, _locked_ids(results), rows)


def check_rows(
    connection: Connection, locked: Collection[int], now: datetime | None
) -> list[dict[str, Any]]:
    """Read the rows of jobs just locked; unlock the ones that are no longer there to work.

    Advisory locks are not MVCC: a job locked just after another process
    finished it has no row, or a finished, expired or rescheduled one, by the
    time it is read again in a new snapshot.
    """
    if not locked:
        return []
    rows = db.run(connection, sql.CHECK_LOCKED_JOBS, {"ids": list(locked), "now": now})
    return _still_there(connection, locked, rows)


def _still_there(
    connection: Connection, locked: Collection[int], rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows of the ``locked`` jobs; the locks of jobs without one are released."""
    found = {row["id"]: row for row in rows}
    gone = [job_id for job_id in locked if job_id not in found]
    if gone:
        unlock(connection, gone)
        log_event(logging.DEBUG, "jobs_gone_after_lock", internal=True, job_ids=gone)
    return [found[job_id] for job_id in locked if job_id in found]
