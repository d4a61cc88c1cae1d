"""A real worker pool for end-to-end tests, and ways to wait for it.

Waits poll the queue table with a real-time deadline (this module keeps real
time under freezegun), so a test never sleeps longer than it has to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from que import Que
from que.worker import PoolSettings, WorkerPool
from que_testing.assertions import EnqueuedJob

DEFAULT_TIMEOUT = 10.0  # seconds
CHECK_EVERY = 0.01  # seconds between looks at the queue table

TEST_POOL_SETTINGS = PoolSettings(
    worker_priorities=(None, None),
    poll_interval=0.1,  # jobs the notify trigger does not announce (time travel) are found fast
    wait_period=0.01,
)


def _pending(job: EnqueuedJob, now: datetime) -> bool:
    """Whether a worker still has ``job`` to do now."""
    return job.finished_at is None and job.expired_at is None and job.run_at <= now


class BackgroundWorker:
    """A worker pool running in the test's process, against committed data."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        """The running :class:`~que.worker.WorkerPool`."""

    def __repr__(self) -> str:
        return f"<que_worker {self.pool.status().state}>"

    def wait_for(self, ids: Iterable[int], timeout: float = DEFAULT_TIMEOUT) -> list[EnqueuedJob]:
        """Wait until the worker has done the jobs with ``ids``; return what is left of them.

        A job is done when it is gone (destroyed), finished, expired, or
        rescheduled for later (retried). Fails the test after ``timeout`` seconds.
        """
        __tracebackhide__ = True
        wanted = set(ids)
        return self._wait(lambda job: job.id in wanted, timeout, f"jobs {sorted(wanted)}")

    def wait_until_empty(self, timeout: float = DEFAULT_TIMEOUT) -> list[EnqueuedJob]:
        """Wait until no job is ready to run; return the jobs left (finished, expired, later)."""
        __tracebackhide__ = True
        return self._wait(lambda job: True, timeout, "every ready job")

    def _wait(
        self, selects: Callable[[EnqueuedJob], bool], timeout: float, what: str
    ) -> list[EnqueuedJob]:
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            now = Que.clock() or datetime.now(UTC)
            jobs = [EnqueuedJob.from_row(row) for row in Que.jobs()]
            selected = [job for job in jobs if selects(job)]
            if not any(_pending(job, now) for job in selected):
                return selected
            if time.monotonic() >= deadline:
                waiting = [job for job in selected if _pending(job, now)]
                raise AssertionError(
                    f"the que worker did not finish {what} within {timeout} s; still waiting:\n"
                    + "\n".join(f"  {job.describe(['args', 'error_count'])}" for job in waiting)
                    + f"\nworker: {self.pool.status()}"
                )
            time.sleep(CHECK_EVERY)
