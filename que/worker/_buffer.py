"""The job buffer: locked jobs waiting for a worker, most important first.

Jobs are ordered by ``(priority, run_at, id)``. A worker takes only jobs whose
priority is at most its threshold; when a job arrives and several idle workers
could take it, the least restrictive one gets it, so the restrictive workers
stay free for the important jobs they are kept for. The buffer holds at most
``maximum_size`` jobs: a more important job displaces the least important one,
which the locker then unlocks.

It also answers the locker's question "what could you take now?" as a list of
*slots*, each the highest priority one more job may have: one per idle worker
(its threshold), one per free place (any priority), and, when the buffer is
full, one per buffered job (any job more important than it).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from que.worker.settings import ANY_PRIORITY, threshold_limit


class JobKey(NamedTuple):
    """What orders jobs: lower priority first, then earlier ``run_at``, then lower id."""

    priority: int
    run_at: datetime
    id: int


@dataclass(frozen=True, order=True)
class BufferedJob:
    """A job this process has locked, known by what orders it: its worker reads the row."""

    key: JobKey

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> BufferedJob:
        return cls(JobKey(row["priority"], row["run_at"], row["id"]))

    @property
    def id(self) -> int:
        return self.key.id

    @property
    def priority(self) -> int:
        return self.key.priority


class Slots:
    """Places for more jobs, each taking jobs up to a priority; filled most restrictive first.

    Offered jobs in ``(priority, run_at, id)`` order, filling each with the most
    restrictive slot that fits keeps the roomier slots for later, less important
    jobs, so the jobs that fit are always a prefix of the offer.
    """

    def __init__(self, limits: Iterable[int]) -> None:
        self._limits = sorted(limits)

    def __len__(self) -> int:
        return len(self._limits)

    def __repr__(self) -> str:
        return f"Slots({self._limits})"

    @property
    def limits(self) -> list[int]:
        """The highest priority each slot takes, most restrictive first."""
        return list(self._limits)

    @property
    def reach(self) -> int | None:
        """The highest priority a slot takes (``None``: no slots)."""
        return self._limits[-1] if self._limits else None

    def fill(self, priority: int) -> int | None:
        """Use the most restrictive slot that takes ``priority``; return its limit."""
        index = bisect.bisect_left(self._limits, priority)
        if index == len(self._limits):
            return None
        return self._limits.pop(index)

    def free(self, limit: int) -> None:
        """Give back a slot that :meth:`fill` used (its job could not be locked)."""
        bisect.insort(self._limits, limit)

    def accept(self, priorities: Sequence[int]) -> int:
        """Fill slots for ``priorities`` (sorted, most important first); how many fit."""
        for count, priority in enumerate(priorities):
            if self.fill(priority) is None:
                return count
        return len(priorities)


class _Waiter:
    """An idle worker blocked in :meth:`JobBuffer.take`."""

    __slots__ = ("event", "job", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.job: BufferedJob | None = None
        self.event = threading.Event()


class JobBuffer:
    """Thread-safe: the locker pushes jobs, worker threads take them."""

    def __init__(
        self,
        maximum_size: int,
        minimum_size: int = 0,
        *,
        on_room: Callable[[], None] | None = None,
    ) -> None:
        if not 0 <= minimum_size <= maximum_size:
            raise ValueError(
                f"buffer sizes must be 0 <= minimum <= maximum, not {minimum_size}, {maximum_size}"
            )
        self.maximum_size = maximum_size
        self.minimum_size = minimum_size
        self.on_room = on_room
        """Called (outside the lock) when the buffer wants more jobs (see :attr:`hungry`)."""
        self._jobs: list[BufferedJob] = []
        self._waiting: list[_Waiter] = []
        self._lock = threading.Lock()
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<JobBuffer {len(self._jobs)}/{self.maximum_size} jobs, "
                f"{len(self._waiting)} idle worker(s)>"
            )

    @property
    def hungry(self) -> bool:
        """Whether polling for more is worth it: fewer jobs than the minimum are
        buffered, or none is and a worker waits."""
        with self._lock:
            return self._hungry()

    def _hungry(self) -> bool:
        return len(self._jobs) < self.minimum_size or (not self._jobs and bool(self._waiting))

    @property
    def idle_workers(self) -> int:
        with self._lock:
            return len(self._waiting)

    def slots(self) -> Slots:
        """What the buffer and the idle workers would take right now."""
        with self._lock:
            if self._closed:
                return Slots(())
            limits = [waiter.limit for waiter in self._waiting]
            free = self.maximum_size - len(self._jobs)
            if free > 0:
                limits += [ANY_PRIORITY] * free
            else:
                # Full: a strictly more important job would displace a buffered one.
                limits += [job.priority - 1 for job in self._jobs]
            return Slots(limits)

    def push(self, jobs: Iterable[BufferedJob]) -> list[BufferedJob]:
        """Hand jobs to idle workers or buffer them; return those that did not fit.

        The jobs returned (some of the new ones, or buffered ones they displaced)
        are no longer this buffer's: the caller unlocks them.
        """
        with self._lock:
            if self._closed:
                return list(jobs)
            for job in sorted(jobs):
                waiter = self._best_waiter(job.priority)
                if waiter is None:
                    bisect.insort(self._jobs, job)
                else:
                    self._waiting.remove(waiter)
                    waiter.job = job
                    waiter.event.set()
            overflow = self._jobs[self.maximum_size :]
            del self._jobs[self.maximum_size :]
            return overflow

    def _best_waiter(self, priority: int) -> _Waiter | None:
        """The least restrictive idle worker that takes ``priority`` (longest idle first)."""
        best: _Waiter | None = None
        for waiter in self._waiting:
            if waiter.limit >= priority and (best is None or waiter.limit > best.limit):
                best = waiter
        return best

    def take(self, threshold: int | None) -> BufferedJob | None:
        """The most important job a worker with ``threshold`` may run; wait for one.

        Returns ``None`` once the buffer is closed.
        """
        limit = threshold_limit(threshold)
        with self._lock:
            if self._closed:
                return None
            if self._jobs and self._jobs[0].priority <= limit:
                job = self._jobs.pop(0)
                waiter = None
            else:
                waiter = _Waiter(limit)
                self._waiting.append(waiter)
            hungry = self._hungry()
        if hungry and self.on_room is not None:
            self.on_room()
        if waiter is None:
            return job
        waiter.event.wait()
        return waiter.job

    def clear(self) -> list[BufferedJob]:
        """Remove and return every buffered job (their locks are gone or going)."""
        with self._lock:
            jobs, self._jobs = self._jobs, []
            return jobs

    def close(self) -> list[BufferedJob]:
        """Stop: wake idle workers empty-handed and return the buffered jobs."""
        with self._lock:
            self._closed = True
            for waiter in self._waiting:
                waiter.event.set()
            self._waiting.clear()
            jobs, self._jobs = self._jobs, []
            return jobs
