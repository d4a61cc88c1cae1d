"""que, this project: its own API everywhere, as a user would call it.

Enqueue: ``Que.bulk_enqueue()`` (W1) and ``BenchNoop.enqueue()`` inside the
caller's transaction (W3, W4). Work: the ``que`` command at its defaults (W2,
W4). Poll: the worker's own poll function on an autocommit connection, a full
walk and a follow-up (W5).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from time import perf_counter
from typing import ClassVar

from bench.compare.database import connect
from bench.compare.que_jobs import BenchNoop
from bench.compare.systems import Connection, Pending, Poll, PollResult, System, WorkerSpec
from que import Que
from que._core import db, sql

MISSING_WORKER = "que worker pool not available"

QUEUED = """
SELECT count(*) FROM public.que_jobs WHERE finished_at IS NULL AND expired_at IS NULL
"""

# Session-level locks, as a worker process's locker holds them.
LOCK_HEAD = """
SELECT id, pg_advisory_lock(id)
FROM (SELECT id FROM public.que_jobs ORDER BY priority, run_at, id LIMIT %s) AS head
"""


class QueSystem(System):
    name: ClassVar[str] = "que"
    summary: ClassVar[str] = (
        "this project: Que.bulk_enqueue, Job.enqueue in the caller's transaction, the que command"
    )

    def install(self, dsn: str, connection: Connection) -> None:
        with Que.using(connection):
            Que.migrate()

    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        with Que.using(connection), Que.bulk_enqueue():
            for n in numbers:
                BenchNoop.enqueue(n, False)

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        with Que.using(connection):
            BenchNoop.enqueue(number, notify)

    def queued(self, connection: Connection) -> int:
        row = connection.execute(QUEUED).fetchone()
        return int(row[0]) if row else 0

    def worker(self, dsn: str) -> WorkerSpec:
        if importlib.util.find_spec("que.cli") is None:
            raise Pending(f"{MISSING_WORKER} (no que.cli)")
        return WorkerSpec(
            argv=[
                sys.executable,
                "-m",
                "que.cli",
                "--connection-url",
                dsn,
                "bench.compare.que_jobs",
            ],
            settings="que command defaults (6 workers 10,30,50,any,any,any; buffer 8; "
            "poll interval 5 s; wait period 50 ms; LISTEN on)",
            missing=MISSING_WORKER,
        )

    def hold_head(self, dsn: str, holder: Connection, count: int) -> set[int]:
        return {row[0] for row in holder.execute(LOCK_HEAD, [count]).fetchall()}

    @contextmanager
    def poller(self, dsn: str) -> Iterator[Poll]:
        """The worker's poll for one free "any" slot, as the locker runs it.

        A poll that is not a follow-up walks the whole queue, as the first poll
        of each poll interval does; a follow-up starts where the last full walk
        found a job it could lock. The job a poll locks is unlocked again
        (untimed), so every poll faces the same queue.
        """
        try:
            from que.worker import locks, poller
            from que.worker._buffer import JobKey, Slots
            from que.worker.settings import ANY_PRIORITY
        except ImportError as error:
            raise Pending(f"que worker poll not available ({error})") from error
        with connect(dsn) as connection:
            db.run(connection, sql.LOCKER_SESSION)  # the lock connection's session setting
            resume: JobKey | None = None

            def poll(follow_up: bool) -> PollResult:
                nonlocal resume
                started = perf_counter()
                result = poller.poll(
                    connection,
                    Que.default_queue,
                    Slots([ANY_PRIORITY]),
                    held=(),
                    now=None,
                    start=resume if follow_up else None,
                )
                elapsed = perf_counter() - started
                if not follow_up:
                    resume = result.resume_from
                ids = [row["id"] for row in result.rows]
                locks.unlock(connection, ids)
                return elapsed, ids

            yield poll
