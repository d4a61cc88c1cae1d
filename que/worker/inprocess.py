"""The worker pool of ``Que.mode = "async"``: one per process, started and stopped here.

``start()`` runs a :class:`~que.worker._pool.WorkerPool` in the current process
(for small apps, and for web servers in each worker process after the fork);
``stop()`` stops it, letting running jobs finish. At interpreter exit a running
pool is stopped the same way. Settings for the next start come from
``configure()``; by default the lock connection is opened with the settings of
a ``Que.connection`` connection.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Any

from que.worker._pool import WorkerPool
from que.worker.settings import PoolSettings

_settings = PoolSettings()
_pool: WorkerPool | None = None
_lock = threading.RLock()


def configure(
    settings: PoolSettings | None = None,
    *,
    worker_priorities: tuple[int | None, ...] | None = None,
    queues: Mapping[str, float | None] | None = None,
    poll_interval: float | None = None,
    maximum_buffer_size: int | None = None,
    minimum_buffer_size: int | None = None,
    wait_period: float | None = None,
    listen: bool | None = None,
    connection_url: str | None = None,
) -> PoolSettings:
    """Set the settings of the next ``start()``: ``settings`` as a whole (default:
    the current ones), with each field given here changed (``None``: unchanged).

    ``configure(worker_priorities=(None, None), queues={"default": 1.0})``;
    ``configure(PoolSettings())`` puts back the defaults. See :class:`PoolSettings`.
    """
    global _settings
    changes: dict[str, Any] = {
        name: value
        for name, value in {
            "worker_priorities": worker_priorities,
            "queues": queues,
            "poll_interval": poll_interval,
            "maximum_buffer_size": maximum_buffer_size,
            "minimum_buffer_size": minimum_buffer_size,
            "wait_period": wait_period,
            "listen": listen,
            "connection_url": connection_url,
        }.items()
        if value is not None
    }
    with _lock:
        _settings = dataclasses.replace(settings or _settings, **changes)
        return _settings


def settings() -> PoolSettings:
    """The settings the next ``start()`` will use."""
    return _settings


def current() -> WorkerPool | None:
    """The running in-process pool, if any."""
    return _pool


def start() -> WorkerPool:
    """Start the in-process pool (once; a running pool is returned as it is)."""
    global _pool
    with _lock:
        if _pool is not None and _pool.running:
            return _pool
        pool = WorkerPool(_settings)
        pool.start()
        _pool = pool
        return pool


def stop(timeout: float | None = None) -> bool:
    """Stop the in-process pool, waiting for its running jobs (at most ``timeout`` s).

    ``True`` when it has stopped (or none was running). Called from a job, it
    only asks the pool to stop, since the job cannot wait for itself.
    """
    global _pool
    with _lock:
        pool = _pool
    if pool is None:
        return True
    stopped = pool.stop(timeout)  # not under the lock: a running job may call stop() too
    if stopped:
        with _lock:
            if _pool is pool:
                _pool = None
    return stopped


def _stop_at_exit() -> None:
    stop()


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts its own pool if asked."""
    global _pool, _lock
    _pool = None
    _lock = threading.RLock()


atexit.register(_stop_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
