"""The production worker pool: a locker thread, a job buffer and worker threads.

One :class:`WorkerPool` per process. The ``que`` command runs one; so does
``Que.mode = "async"`` (through :mod:`que.worker.inprocess`). See
``docs/workers.md`` for how it works.
"""

from __future__ import annotations

from que.worker._pool import PoolStatus, WorkerPool
from que.worker.settings import PoolSettings, worker_priorities

__all__ = ["PoolSettings", "PoolStatus", "WorkerPool", "worker_priorities"]
