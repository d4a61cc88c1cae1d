"""The five workloads of the comparison, written once against :class:`System`.

Each ``measure`` gets a fresh database with the system's schema and the
``bench_done`` table installed, returns one value per metric, and raises
:class:`Invalid` when the run's accounting does not add up (a job lost, run
twice, or a poll that took a job it should not have).
"""

from __future__ import annotations

import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, ClassVar

import psycopg

from bench.compare import accounting
from bench.compare.database import connect
from bench.compare.systems import Connection, Pending, System, WorkerSpec
from bench.compare.worker_process import WorkerDied, WorkerProcess, wait_until

STALL_TIMEOUT = 60.0  # seconds without progress before a run is given up
PROGRESS_INTERVAL = 0.5  # seconds between progress checks, light on a busy server
WORKER_START_TIMEOUT = 60.0  # seconds for a worker to run its first job
LATENCY_TIMEOUT = 10.0  # seconds for one job to start in W4
LATENCY_WARMUP = 3  # jobs run before W4 measures, so the worker is up and idle
LATENCY_GAP = 0.005  # seconds between a job's start and the next enqueue: the worker idles
ROUND_TRIP_WARMUP = 20  # W3 transactions before the clock starts (plans, caches)
POLL_WARMUP = 3  # W5 polls before the clock starts

# The enqueuing session of W3 and W4 does not wait for the WAL flush at commit.
# The flush is the disk's cost, the same for every system, and on a shared disk
# it swings between 0.5 and 6 ms from one second to the next, which would bury
# the differences between the queues that these workloads are about.
NO_FLUSH_WAIT = "SET synchronous_commit = off"


class Invalid(Exception):
    """The run's accounting failed: its numbers must not be used."""


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool


@dataclass(frozen=True)
class Sizes:
    """Job counts; the issue's sizes times ``--scale`` (never below a usable minimum)."""

    bulk: int = 100_000
    drain: int = 50_000
    round_trips: int = 2_000
    latency_jobs: int = 1_000
    head_locked: int = 10_000
    polls: int = 50

    def scaled(self, scale: float) -> Sizes:
        def size(full: int, least: int) -> int:
            return max(least, round(full * scale))

        return Sizes(
            bulk=size(self.bulk, 100),
            drain=size(self.drain, 100),
            round_trips=size(self.round_trips, 50),
            latency_jobs=size(self.latency_jobs, 20),
            head_locked=size(self.head_locked, 100),
            polls=size(self.polls, 20),
        )


@dataclass(frozen=True)
class Context:
    sizes: Sizes
    log_dir: Path
    label: str
    """Names this measurement's worker log."""


@dataclass(frozen=True)
class Case:
    """One system's part in one run: its adapter and its fresh, installed database."""

    system: System
    dsn: str
    context: Context


Values = dict[str, float]
Report = Callable[[Case, "Values | Exception", float], None]
"""Called once per case with its values (or why it has none) and the seconds it took."""


class Workload(ABC):
    key: ClassVar[str]
    title: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    raw_reference: ClassVar[str | None] = None
    """The raw baseline this workload's ratios are also given against."""

    @abstractmethod
    def describe(self, sizes: Sizes) -> str: ...

    def measure_all(self, cases: Sequence[Case], report: Report) -> None:
        """Measure the systems of one run one after the other (workloads with a
        worker process cannot share the machine), reporting each as it ends."""
        for case in cases:
            began = perf_counter()
            outcome: Values | Exception
            try:
                outcome = self.measure(case.system, case.dsn, case.context)
            except Exception as error:
                outcome = error
            report(case, outcome, perf_counter() - began)

    def measure(self, system: System, dsn: str, context: Context) -> Values:
        raise NotImplementedError


def _expect_queued(system: System, connection: Connection, expected: int) -> None:
    queued = system.queued(connection)
    if queued != expected:
        raise Invalid(f"{queued} jobs in the queue, expected {expected}")


def _check(connection: Connection, expected: range) -> accounting.Tally:
    tally = accounting.tally(connection)
    problem = tally.problem(expected)
    if problem:
        raise Invalid(problem)
    return tally


def _worker_died(spec: WorkerSpec, died: WorkerDied, jobs_done: int) -> Exception:
    """A worker that never ran a job because it is not built yet is pending, not a failure."""
    if spec.missing and jobs_done == 0:
        return Pending(f"{spec.missing}: {died.log_tail}")
    return Invalid(str(died))


class BulkEnqueue(Workload):
    key = "W1"
    title = "bulk enqueue"
    metrics = (Metric("W1", "bulk enqueue", "jobs/s", higher_is_better=True),)
    raw_reference = "raw-batch"

    def describe(self, sizes: Sizes) -> str:
        return f"W1 bulk enqueue of {sizes.bulk:,} jobs, one call (rate: higher is better)"

    def measure(self, system: System, dsn: str, context: Context) -> dict[str, float]:
        numbers = range(context.sizes.bulk)
        with connect(dsn) as connection:
            started = perf_counter()
            system.enqueue_many(connection, numbers)
            elapsed = perf_counter() - started
            _expect_queued(system, connection, len(numbers))
        return {"W1": len(numbers) / elapsed}


class Drain(Workload):
    key = "W2"
    title = "drain"
    metrics = (Metric("W2", "drain", "jobs/s", higher_is_better=True),)

    def describe(self, sizes: Sizes) -> str:
        return (
            f"W2 drain of {sizes.drain:,} pre-enqueued no-op jobs by one worker process "
            "at its defaults (rate: higher is better)"
        )

    def measure(self, system: System, dsn: str, context: Context) -> dict[str, float]:
        spec = system.worker(dsn)
        expected = range(context.sizes.drain)
        with connect(dsn) as connection:
            system.enqueue_many(connection, expected)
            done = 0

            def progress() -> tuple[bool, object]:
                nonlocal done
                done = accounting.count(connection)
                return done >= len(expected), done

            try:
                with WorkerProcess(spec, context.log_dir / f"{context.label}.log") as worker:
                    wait_until(
                        progress,
                        worker=worker,
                        stall_timeout=STALL_TIMEOUT,
                        what="draining",
                        interval=PROGRESS_INTERVAL,
                    )
                    wait_until(
                        lambda: (system.queued(connection) == 0, system.queued(connection)),
                        worker=worker,
                        stall_timeout=STALL_TIMEOUT,
                        what="waiting for the queue to empty",
                        interval=PROGRESS_INTERVAL,
                    )
            except WorkerDied as died:
                raise _worker_died(spec, died, done) from died
            except TimeoutError as timeout:
                raise Invalid(str(timeout)) from timeout
            tally = _check(connection, expected)  # after the worker stopped: nothing ran twice
            _expect_queued(system, connection, 0)
        assert tally.first_done is not None and tally.last_done is not None
        span = tally.last_done - tally.first_done
        return {"W2": (len(expected) - 1) / span}


@dataclass
class _Session:
    case: Case
    connection: Connection
    times: list[float] = field(default_factory=list)
    error: Exception | None = None


class RoundTrip(Workload):
    """Interleaved: every system has its connection open, and they take turns one
    transaction each, in a rotating order, so a moment when the shared machine
    is slow costs them all alike instead of whoever was measured in it."""

    key = "W3"
    title = "single enqueue"
    metrics = (Metric("W3", "single enqueue round trip", "ms", higher_is_better=False),)
    raw_reference = "raw"

    def describe(self, sizes: Sizes) -> str:
        return (
            f"W3 single-job enqueue round trip, one job per transaction, median of "
            f"{sizes.round_trips:,}, systems interleaved (time: lower is better)"
        )

    def measure_all(self, cases: Sequence[Case], report: Report) -> None:
        if not cases:
            return
        began = perf_counter()
        count = cases[0].context.sizes.round_trips
        with ExitStack() as stack:
            sessions: list[_Session] = []
            for case in cases:
                try:
                    connection = stack.enter_context(connect(case.dsn))
                    connection.execute(NO_FLUSH_WAIT)
                    for n in range(-ROUND_TRIP_WARMUP, 0):
                        self._enqueue(case.system, connection, n)
                except Exception as error:
                    report(case, error, perf_counter() - began)
                    continue
                sessions.append(_Session(case, connection))
            for n in range(count):
                shift = n % max(1, len(sessions))
                for session in sessions[shift:] + sessions[:shift]:
                    if session.error is None:
                        try:
                            session.times.append(
                                self._enqueue(session.case.system, session.connection, n)
                            )
                        except Exception as error:
                            session.error = error
            for session in sessions:
                report(session.case, self._result(session, count), perf_counter() - began)

    @staticmethod
    def _enqueue(system: System, connection: Connection, n: int) -> float:
        started = perf_counter()
        with connection.transaction():
            system.enqueue_one(connection, n, notify=False)
        return perf_counter() - started

    @staticmethod
    def _result(session: _Session, count: int) -> Values | Exception:
        if session.error is not None:
            return session.error
        try:
            _expect_queued(session.case.system, session.connection, ROUND_TRIP_WARMUP + count)
        except Invalid as invalid:
            return invalid
        return {"W3": statistics.median(session.times) * 1000}


class Latency(Workload):
    key = "W4"
    title = "enqueue-to-start latency"
    metrics = (
        Metric("W4 p50", "enqueue-to-start p50", "ms", higher_is_better=False),
        Metric("W4 p99", "enqueue-to-start p99", "ms", higher_is_better=False),
    )

    def describe(self, sizes: Sizes) -> str:
        return (
            f"W4 enqueue-to-start latency on an idle worker, {sizes.latency_jobs:,} jobs "
            "one at a time (time: lower is better)"
        )

    def measure(self, system: System, dsn: str, context: Context) -> dict[str, float]:
        spec = system.worker(dsn)
        count = context.sizes.latency_jobs
        enqueued_at: dict[int, float] = {}
        ran = 0
        with connect(dsn) as connection, connect(dsn) as listener:
            connection.execute(NO_FLUSH_WAIT)
            listener.execute(f"LISTEN {accounting.CHANNEL}")
            try:
                with WorkerProcess(spec, context.log_dir / f"{context.label}.log") as worker:
                    for n in range(-LATENCY_WARMUP, count):
                        time.sleep(LATENCY_GAP)
                        enqueued_at[n] = time.time()
                        with connection.transaction():
                            system.enqueue_one(connection, n, notify=True)
                        timeout = WORKER_START_TIMEOUT if n == -LATENCY_WARMUP else LATENCY_TIMEOUT
                        _wait_for_job(listener, n, worker, timeout)
                        ran += 1
            except WorkerDied as died:
                raise _worker_died(spec, died, ran) from died
            _check(connection, range(-LATENCY_WARMUP, count))
            _expect_queued(system, connection, 0)
            started = accounting.started_at(connection)
        latencies = [(started[n] - enqueued_at[n]) * 1000 for n in range(count)]
        percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
        return {"W4 p50": statistics.median(latencies), "W4 p99": percentiles[98]}


def _wait_for_job(
    listener: psycopg.Connection[Any], n: int, worker: WorkerProcess, timeout: float
) -> None:
    """Block until job ``n`` announces itself on the bench channel."""
    deadline = time.monotonic() + timeout
    payload = str(n)
    while (left := deadline - time.monotonic()) > 0:
        for note in listener.notifies(timeout=min(left, 0.5), stop_after=1):
            if note.payload == payload:
                return
        worker.check_alive()
    raise Invalid(f"job {n} did not start within {timeout:.0f} s; worker log: {worker.log_tail()}")


class PollCost(Workload):
    """Each attempt times two polls: one as the first poll of a poll interval, then
    a follow-up as the same worker makes while the interval lasts. A system that
    keeps nothing between polls does the same work for both."""

    key = "W5"
    title = "poll with the head locked"
    metrics = (
        Metric("W5", "first poll of an interval", "ms", higher_is_better=False),
        Metric("W5 next", "follow-up poll", "ms", higher_is_better=False),
    )

    def describe(self, sizes: Sizes) -> str:
        return (
            f"W5 poll for one job while the {sizes.head_locked:,} jobs at the head are "
            f"worked by another process, median of {sizes.polls} polls (lower is better)"
        )

    def measure(self, system: System, dsn: str, context: Context) -> dict[str, float]:
        head, polls = context.sizes.head_locked, context.sizes.polls
        with connect(dsn) as connection:
            # Peers consume the job each poll takes; que's polls unlock theirs again.
            polls_made = len(self.metrics) * (POLL_WARMUP + polls)
            system.enqueue_many(connection, range(head + polls_made + 10))
        times: dict[str, list[float]] = {metric.key: [] for metric in self.metrics}
        with connect(dsn) as holder:
            held = system.hold_head(dsn, holder, head)
            if len(held) != head:
                raise Invalid(f"held {len(held)} jobs at the head, expected {head}")
            with system.poller(dsn) as poll:
                for attempt in range(POLL_WARMUP + polls):
                    for key, follow_up in (("W5", False), ("W5 next", True)):
                        elapsed, ids = poll(follow_up)
                        if len(ids) != 1 or ids[0] in held:
                            raise Invalid(f"a poll took {ids}: expected one job not held elsewhere")
                        if attempt >= POLL_WARMUP:
                            times[key].append(elapsed)
        return {key: statistics.median(values) * 1000 for key, values in times.items()}


WORKLOADS: tuple[Workload, ...] = (BulkEnqueue(), Drain(), RoundTrip(), Latency(), PollCost())
