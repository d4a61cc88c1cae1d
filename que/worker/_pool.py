"""``WorkerPool``: a locker, a job buffer and worker threads, with one start/stop lifecycle.

    pool = WorkerPool(PoolSettings(worker_priorities=(10, None), queues={"default": 1.0}))
    pool.start()          # connects the locker; raises if the database is unreachable
    ...
    pool.stop()           # buffered jobs released at once, running jobs finish

The ``que`` command and ``Que.mode = "async"`` both run one of these.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType

from que._core import db
from que._core.config import config
from que._core.log import log_event
from que._core.schema import error_message
from que.errors import ConfigurationError
from que.worker._buffer import JobBuffer
from que.worker._locker import Locker
from que.worker._workers import Worker
from que.worker.settings import PoolSettings


@dataclass(frozen=True)
class PoolStatus:
    """A snapshot of a pool, for process titles and monitoring."""

    state: str
    """``"starting"``, ``"working"``, ``"stopping"`` or ``"stopped"``."""
    workers: int
    """Worker threads."""
    busy: int
    """Workers running a job now."""
    buffered: int
    """Jobs locked and waiting for a worker."""
    queues: tuple[str, ...]
    """The queues worked."""
    locker_pid: int | None
    """The lock connection's backend pid (its ``que_lockers`` row)."""
    polls: int
    """Polls made since the start."""
    reconnects: int
    """Times the lock connection was made again after it was lost."""


class WorkerPool:
    """Works jobs in this process until stopped."""

    def __init__(self, settings: PoolSettings | None = None) -> None:
        self.settings = settings or PoolSettings()
        """How this pool is set up."""
        self._locker: Locker | None = None
        self._workers: list[Worker] = []
        self._buffer: JobBuffer | None = None
        self._state = "stopped"
        self._queues: dict[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<WorkerPool {self._state} workers={self.settings.worker_count}>"

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the pool has started and not yet stopped."""
        return self._locker is not None and self._locker.alive

    @property
    def failure(self) -> BaseException | None:
        """The bug that stopped the pool (logged as ``locker_crashed`` or
        ``worker_crashed``), if one did."""
        return self._locker.failure if self._locker is not None else None

    @property
    def queues(self) -> dict[str, float]:
        """The queues worked, with their poll intervals (seconds)."""
        if self._queues is None:
            return self.settings.queue_intervals(config.default_queue)
        return dict(self._queues)

    def start(self) -> WorkerPool:
        """Connect the locker, register it and start the threads.

        Raises (and starts nothing) if the lock connection cannot be made.
        """
        with self._lock:
            if self._locker is not None:
                raise ConfigurationError(
                    "this worker pool has already been started: make a new WorkerPool "
                    "to start another"
                )
            self._state = "starting"
            settings = self.settings
            self._queues = settings.queue_intervals(config.default_queue)
            conninfo = settings.connection_url
            if conninfo is None:
                conninfo = db.conninfo_of_connection()
            buffer = JobBuffer(settings.maximum_buffer_size, settings.minimum_buffer_size)
            locker = Locker(
                conninfo=conninfo,
                settings=settings,
                queues=self.queues,
                buffer=buffer,
                workers_done=self._workers_done,
            )
            buffer.on_room = locker.wake
            workers = [
                Worker(
                    index,
                    threshold,
                    buffer=buffer,
                    finished=locker.job_finished,
                    stopping=locker.stopping,
                    fail=locker.fail,
                )
                for index, threshold in enumerate(settings.worker_priorities, start=1)
            ]
            try:
                locker.start()
            except BaseException:
                self._state = "stopped"
                raise
            self._buffer, self._workers, self._locker = buffer, workers, locker
            for worker in workers:
                worker.start()
            self._state = "working"
        log_event(
            logging.INFO,
            "worker_pool_started",
            locker_pid=locker.backend_pid,
            worker_priorities=["any" if t is None else t for t in settings.worker_priorities],
            queues=self.queues,
            maximum_buffer_size=settings.maximum_buffer_size,
            wait_period=settings.wait_period,
            listen=settings.listen,
        )
        return self

    def _workers_done(self) -> bool:
        return not any(worker.alive for worker in self._workers)

    def request_stop(self) -> None:
        """Begin stopping without waiting: no new jobs, buffered ones released at once.

        Safe to call from a signal handler or from a job.
        """
        locker = self._locker
        if locker is not None and not locker.stopping.is_set():
            self._state = "stopping"
            log_event(logging.INFO, "worker_pool_stopping", running_job_ids=self.running_job_ids())
            locker.request_stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the pool has stopped; ``False`` if ``timeout`` seconds passed first."""
        locker = self._locker
        if locker is None:
            return True
        if not locker.join(timeout):
            return False
        if self._state != "stopped":
            self._state = "stopped"
            failure = locker.failure
            log_event(
                logging.ERROR if failure else logging.INFO,
                "worker_pool_stopped",
                locker_pid=locker.backend_pid,
                failure=None if failure is None else error_message(failure),
            )
        return True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop and wait for running jobs to finish (at most ``timeout`` seconds).

        Returns ``False`` if jobs were still running when the timeout passed; they
        go on running in their threads (a thread cannot be killed safely: exit the
        process to abandon them, which rolls their transactions back).
        """
        self.request_stop()
        if threading.current_thread() in {worker.thread for worker in self._workers}:
            return False  # a job stopping its own pool: it cannot wait for itself
        return self.join(timeout)

    def running_job_ids(self) -> list[int]:
        """The ids of the jobs the workers are running now."""
        return [w.current_job_id for w in self._workers if w.current_job_id is not None]

    def status(self) -> PoolStatus:
        """A snapshot of the pool, for process titles and monitoring."""
        locker = self._locker
        return PoolStatus(
            state=self._state,
            workers=len(self._workers) or self.settings.worker_count,
            busy=len(self.running_job_ids()),
            buffered=len(self._buffer) if self._buffer is not None else 0,
            queues=tuple(self.queues),
            locker_pid=locker.backend_pid if locker else None,
            polls=locker.polls if locker else 0,
            reconnects=locker.reconnects if locker else 0,
        )
