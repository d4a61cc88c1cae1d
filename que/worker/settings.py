"""How a worker pool is set up: workers and their priorities, queues, buffer, timings.

The ``que`` command builds these from its options and ``Que.mode = "async"``
from :func:`que.worker.inprocess.configure`; both share the defaults below, which
are Que's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from que._core.schema import PRIORITIES, queue_name_problem
from que.errors import ConfigurationError, ConfigurationTypeError

ANY_PRIORITY = PRIORITIES[-1]
"""The least important priority a job can have (``priority`` is a smallint): a
worker whose threshold is "any" takes jobs up to it."""
MOST_IMPORTANT_PRIORITY = PRIORITIES[0]

DEFAULT_WORKER_PRIORITIES: tuple[int | None, ...] = (10, 30, 50, None, None, None)
"""One worker per threshold; ``None`` is "any"."""
POLL_INTERVAL = 5.0  # seconds between polls of a queue when the last poll came up short
WAIT_PERIOD = 0.05  # seconds; the longest the locker waits before checking its state again
MAXIMUM_BUFFER_SIZE = 8  # jobs locked in memory, waiting for a worker
MINIMUM_BUFFER_SIZE = 2  # polls between intervals wait until fewer jobs are buffered


def threshold_limit(threshold: int | None) -> int:
    """The highest job priority a worker with ``threshold`` takes (``None``: any)."""
    return ANY_PRIORITY if threshold is None else threshold


def describe_threshold(threshold: int | None) -> str:
    return "any" if threshold is None else str(threshold)


def worker_priorities(
    priorities: Sequence[int | None] | None = None, count: int | None = None
) -> tuple[int | None, ...]:
    """The workers' thresholds, as Que's ``--worker-priorities`` and ``--worker-count`` mean.

    Neither: the defaults (``10,30,50,any,any,any``). Only ``count``: that many
    "any" workers. Both: the list trimmed, or padded with "any", to ``count``.
    """
    if priorities is None:
        if count is None:
            return DEFAULT_WORKER_PRIORITIES
        return (None,) * count
    if count is None:
        return tuple(priorities)
    return (tuple(priorities) + (None,) * count)[:count]


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """Everything a :class:`~que.worker._pool.WorkerPool` needs to know; validated on creation."""

    worker_priorities: tuple[int | None, ...] = DEFAULT_WORKER_PRIORITIES
    """One entry per worker thread: the highest priority it takes; ``None`` is any."""
    queues: Mapping[str, float | None] = field(default_factory=dict)
    """Queue name -> poll interval in seconds (``None``: ``poll_interval``). Empty means
    ``Que.default_queue``, read when the pool starts."""
    poll_interval: float = POLL_INTERVAL
    """Seconds between polls of a queue whose own interval is not given."""
    maximum_buffer_size: int = MAXIMUM_BUFFER_SIZE
    """Jobs locked in memory, waiting for a worker (0: lock only for idle workers)."""
    minimum_buffer_size: int = MINIMUM_BUFFER_SIZE
    """Between poll intervals, a queue is polled again only once fewer jobs than
    this are buffered (or none is and a worker waits)."""
    wait_period: float = WAIT_PERIOD
    """Seconds, at most, between the locker's looks at finished jobs and notifications."""
    listen: bool = True
    """Take jobs announced by the ``que_job_notify`` trigger; ``False``: only poll."""
    connection_url: str | None = None
    """Where the locker opens its dedicated connection; ``None``: the same server
    and settings as a connection of ``Que.connection``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "worker_priorities", tuple(self.worker_priorities))
        object.__setattr__(self, "queues", dict(self.queues))
        if not self.worker_priorities:
            raise ConfigurationError("a worker pool needs at least one worker")
        for threshold in self.worker_priorities:
            if threshold is None:
                continue
            wrong_type = isinstance(threshold, bool) or not isinstance(threshold, int)
            if wrong_type or not MOST_IMPORTANT_PRIORITY <= threshold <= ANY_PRIORITY:
                raise (ConfigurationTypeError if wrong_type else ConfigurationError)(
                    f"a worker priority must be a whole number from {MOST_IMPORTANT_PRIORITY} "
                    f"to {ANY_PRIORITY}, or None for any, not {threshold!r}"
                )
        for name, interval in self.queues.items():
            problem = queue_name_problem(name)
            if problem is not None:
                raise (ConfigurationError if isinstance(name, str) else ConfigurationTypeError)(
                    problem
                )
            if interval is not None:
                _check_positive(f"the poll interval of queue {name!r}", interval)
        _check_positive("poll_interval", self.poll_interval)
        _check_positive("wait_period", self.wait_period)
        for name in ("maximum_buffer_size", "minimum_buffer_size"):
            value = getattr(self, name)
            wrong_type = isinstance(value, bool) or not isinstance(value, int)
            if wrong_type or value < 0:
                raise (ConfigurationTypeError if wrong_type else ConfigurationError)(
                    f"{name} must be a whole number of jobs >= 0, not {value!r}"
                )
        if self.minimum_buffer_size > self.maximum_buffer_size:
            raise ConfigurationError(
                f"minimum_buffer_size ({self.minimum_buffer_size}) cannot be larger than "
                f"maximum_buffer_size ({self.maximum_buffer_size}); to buffer nothing, "
                "set both to 0"
            )

    @property
    def worker_count(self) -> int:
        """How many worker threads: one per priority threshold."""
        return len(self.worker_priorities)

    def queue_intervals(self, default_queue: str) -> dict[str, float]:
        """Each queue worked, with its poll interval in seconds."""
        queues = self.queues or {default_queue: None}
        return {
            name: self.poll_interval if interval is None else interval
            for name, interval in queues.items()
        }


def _check_positive(name: str, value: object) -> None:
    message = f"{name} must be a positive number of seconds, not {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationTypeError(message)
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(message)
