"""Worker threads: each takes jobs up to its priority threshold and runs them.

A job runs through :func:`que._core.running.run_guarded_job` (the code path of sync
mode and the inline runner, with the worker's own lock on the job) on a
connection checked out of ``Que.connection`` for the job, so the job's own
``Que.transaction()`` and resolve helpers use it. When the job is done, its id
goes back to the locker, which releases the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from que._core import db
from que._core.config import config
from que._core.log import log_event
from que._core.running import run_guarded_job
from que._core.schema import error_backtrace, error_message
from que.worker._buffer import JobBuffer
from que.worker._clock import next_backoff
from que.worker._locks import WorkerLock
from que.worker.settings import describe_threshold

SETTLED = frozenset({"destroyed", "finished", "expired"})
"""Resolutions after which a job is never ready again."""


class Worker:
    """One thread working jobs from the buffer until it is closed."""

    def __init__(
        self,
        index: int,
        threshold: int | None,
        *,
        buffer: JobBuffer,
        finished: Callable[[int, bool], None],
        stopping: threading.Event,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.index = index
        self.threshold = threshold
        self._buffer = buffer
        self._finished = finished
        self._stopping = stopping
        self._fail = fail
        self.current_job_id: int | None = None
        """The id of the job running now, if any."""
        self.thread = threading.Thread(
            target=self._run,
            daemon=True,
            name=f"que-worker-{index}(priority {describe_threshold(threshold)})",
        )

    def __repr__(self) -> str:
        return (
            f"<Worker {self.index} threshold={describe_threshold(self.threshold)} "
            f"job={self.current_job_id}>"
        )

    def start(self) -> None:
        self.thread.start()

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _run(self) -> None:
        backoff = 0.0
        while True:
            job = self._buffer.take(self.threshold)
            if job is None:
                return
            self.current_job_id = job.id
            settled = False
            try:
                result = run_guarded_job(WorkerLock(job.id, config.now()))
                settled = result is not None and result.job.resolution in SETTLED
                backoff = 0.0
            except Exception as error:
                if not db.connection_lost(error):
                    # Not the job's doing (its errors are its own) nor the
                    # database's: a bug in que, which must not pass unseen.
                    log_event(
                        logging.CRITICAL,
                        "worker_crashed",
                        job_id=job.id,
                        error=error_message(error),
                        backtrace=error_backtrace(error),
                    )
                    self._fail(error)
                    return
                # The job's transaction rolled back and nothing was recorded: once
                # its lock is released, it runs again.
                backoff = next_backoff(backoff)
                log_event(
                    logging.ERROR,
                    "worker_error",
                    job_id=job.id,
                    error=error_message(error),
                    retry_in=backoff,
                    detail="the connection was lost while the job ran; it will run again",
                )
            finally:
                self.current_job_id = None
                self._finished(job.id, settled)
            if backoff:
                self._stopping.wait(backoff)
