"""The production worker pool: a locker thread, a job buffer and worker threads.

One :class:`WorkerPool` per process. The ``que`` command runs one; so does
``Que.mode = "async"`` (through :mod:`que.worker.inprocess`). See
``docs/explanation/locking.md`` for how it works.
"""

from __future__ import annotations

from que._core.config import config
from que.worker import inprocess
from que.worker._pool import PoolStatus, WorkerPool
from que.worker.settings import PoolSettings, worker_priorities

config.async_mode = inprocess  # what Que.mode = "async" starts and stops

__all__ = ["PoolSettings", "PoolStatus", "WorkerPool", "worker_priorities"]
