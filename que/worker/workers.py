"""Worker threads: each takes jobs up to its priority threshold and runs them.

A job runs through :func:`que.runner.run_job` (the same code path as sync mode
and the inline runner) on a connection checked out of ``Que.connection`` for the
job, so the job's own ``Que.transaction()`` and resolve helpers use it. When the
job is done, its id goes back to the locker, which releases the lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from que import db
from que.job import error_message
from que.log import log_event
from que.runner import run_job
from que.worker.buffer import JobBuffer
from que.worker.settings import describe_threshold

BACKOFF_START = 0.1  # seconds to pause a worker after a database error; doubles each time
BACKOFF_MAXIMUM = 5.0  # seconds


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
        fatal: Callable[[], None],
    ) -> None:
        self.index = index
        self.threshold = threshold
        self._buffer = buffer
        self._finished = finished
        self._stopping = stopping
        self._fatal = fatal
        self.current_job_id: int | None = None
        """The id of the job running now, if any."""
        self.thread = threading.Thread(
            target=self._run, daemon=True,
            name=f"que-worker-{index}(priority {describe_threshold(threshold)})",
        )

    def __repr__(self) -> str:
        return f"<Worker {self.index} threshold={describe_threshold(self.threshold)} " \
               f"job={self.current_job_id}>"

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
            destroy = False
            try:
                with db.checkout():
                    destroy = run_job(job.row, defer_destroy=True).destroy_deferred
                backoff = 0.0
            except Exception as error:
                # The job's own errors are handled inside run_job; this is a failure
                # to record them (a lost connection, say). The job's transaction
                # rolled back and its row is untouched: once unlocked, it runs again.
                backoff = min(BACKOFF_MAXIMUM, backoff * 2 or BACKOFF_START)
                log_event(logging.ERROR, "worker_error", job_id=job.id,
                          error=error_message(error), retry_in=backoff)
            except BaseException as error:
                log_event(logging.ERROR, "worker_stopped", job_id=job.id,
                          error=error_message(error),
                          detail="a job raised an exception that stops the process; "
                                 "its transaction was rolled back and it will run again")
                self._fatal()
                return
            finally:
                self.current_job_id = None
                self._finished(job.id, destroy)
            if backoff:
                self._stopping.wait(backoff)
