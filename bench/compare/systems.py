"""What every system under comparison provides, and how the runner finds them.

The workloads (``workloads.py``) are written once against :class:`System`; an
adapter only says how *its* queue installs its schema, enqueues, runs a
worker, holds jobs and polls. Anything a system cannot do raises
:class:`NotApplicable` (shown as ``n/a``), anything this project has not built
yet raises :class:`Pending` (shown as ``pending``), so every adapter answers
every workload.
"""

from __future__ import annotations

import asyncio
import importlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, ClassVar

import psycopg

Connection = psycopg.Connection[Any]

PollResult = tuple[float, list[int]]
"""One timed poll: (seconds it took, ids of the jobs it took)."""
Poll = Callable[[bool], PollResult]
"""One timed poll; its argument says whether it is a follow-up (the same worker
polled a moment ago). Systems that keep nothing between polls ignore it."""
TakeOne = Callable[[], Awaitable[list[int]]]
"""An asyncio system's dequeue of one job: the ids it took."""


class NotApplicable(Exception):
    """The workload means nothing for this system (e.g. a worker for raw SQL)."""


class Pending(Exception):
    """The system will do this workload, but the code it needs is not there yet."""


@dataclass(frozen=True)
class WorkerSpec:
    """How to start one worker process of a system, at its default settings."""

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    settings: str = ""
    """The settings in force, in words, for the report."""
    missing: str | None = None
    """When set, a worker that dies before running any job means the worker is not
    built yet (this text says so): the workload is pending, not invalid."""


class System(ABC):
    """One job queue (or baseline) under comparison."""

    name: ClassVar[str]
    peer: ClassVar[bool] = False
    """Peers are the other queues; "ratio to the fastest peer" is to the best of them."""
    summary: ClassVar[str]

    @abstractmethod
    def install(self, dsn: str, connection: Connection) -> None:
        """Install the schema into the empty database at ``dsn``, the system's own way."""

    @abstractmethod
    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        """Enqueue one no-op job per number the system's bulk way, committed on return."""

    @abstractmethod
    def queued(self, connection: Connection) -> int:
        """Jobs still waiting or running (not yet done)."""

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        """Enqueue one job in the caller's open transaction on ``connection``."""
        raise NotApplicable(f"{self.name} has no single-job enqueue")

    def worker(self, dsn: str) -> WorkerSpec:
        """The command that starts one worker process for the database at ``dsn``."""
        raise NotApplicable(f"{self.name} has no worker")

    def hold_head(self, dsn: str, holder: Connection, count: int) -> set[int]:
        """Make the ``count`` most important jobs "being worked" by another session.

        ``holder`` is that other session; it stays open while the polls are timed.
        Returns the ids held.
        """
        raise NotApplicable(f"{self.name} has no worker to hold jobs")

    def poller(self, dsn: str) -> AbstractContextManager[Poll]:
        """A function timing one poll/dequeue of one job, as this system's worker does it."""
        raise NotApplicable(f"{self.name} has no poll")


_ADAPTERS: dict[str, tuple[str, str]] = {
    "que": ("bench.compare.que_system", "QueSystem"),
    "pgqueuer": ("bench.compare.pgqueuer_system", "PgQueuerSystem"),
    "pgqueuer-stock": ("bench.compare.pgqueuer_system", "PgQueuerStockSystem"),
    "procrastinate": ("bench.compare.procrastinate_system", "ProcrastinateSystem"),
    "raw": ("bench.compare.raw_sql", "RawSingle"),
    "raw-batch": ("bench.compare.raw_sql", "RawBatch"),
}
SYSTEM_NAMES = tuple(_ADAPTERS)
ALIASES = {"raw": ("raw", "raw-batch")}


def load(name: str) -> System:
    """The adapter called ``name``; imported only when asked for, so a missing peer
    package affects only that peer."""
    module_name, class_name = _ADAPTERS[name]
    adapter: type[System] = getattr(importlib.import_module(module_name), class_name)
    return adapter()


def expand(names: Sequence[str]) -> list[str]:
    """Resolve aliases (``raw`` means both raw baselines) and check the names."""
    chosen: list[str] = []
    for name in names:
        for resolved in ALIASES.get(name, (name,)):
            if resolved not in _ADAPTERS:
                raise ValueError(f"unknown system {name!r}; choose from {', '.join(SYSTEM_NAMES)}")
            if resolved not in chosen:
                chosen.append(resolved)
    return chosen


@contextmanager
def async_poller(session: AbstractAsyncContextManager[TakeOne]) -> Iterator[Poll]:
    """Time an asyncio system's dequeue from inside its own event loop.

    ``session`` sets up (connects, registers) and yields the coroutine function
    that takes one job. The clock starts and stops inside the loop, so the
    asyncio peers are not charged for getting in and out of it on every poll.
    """
    with asyncio.Runner() as runner:
        take = runner.run(session.__aenter__())

        async def timed() -> PollResult:
            started = perf_counter()
            ids = await take()
            return perf_counter() - started, ids

        try:
            yield lambda follow_up: runner.run(timed())
        finally:
            runner.run(session.__aexit__(None, None, None))
