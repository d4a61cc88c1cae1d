"""Polling: when each queue is due, and how one poll picks and locks jobs.

A queue is polled when the pool starts and once its poll interval has passed;
in between, again when the last poll left ready jobs behind and the buffer is
hungry (below its minimum size, or empty while a worker waits). A poll takes
only what the slots (idle workers by threshold, free buffer places, displaceable
buffered jobs) can accept.

A poll looks only at the priorities its slots take. So when a slot appears
that takes priorities the last poll could not (a less restrictive worker fell
idle), the queue is polled again at once while the buffer is hungry: what that
poll found says nothing about those jobs.

When the jobs at the head of a queue are held by other processes, every poll
would walk past all of them again. So the first poll of each poll interval walks
the whole queue, and the follow-up polls within that interval start where that
walk first found a job it could lock. What they skip was held elsewhere a moment
ago; a job released there without being worked, or a more important job that
became ready in between, waits for the next full walk, at most one poll interval,
as a scheduled job does. The locker forgets the resume point whenever it lets go
of a job that may still be ready, so its own released jobs are never skipped.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from que._core import db, sql
from que._core.connection import Connection
from que.worker import _locks as locks
from que.worker._buffer import JobKey, Slots
from que.worker._clock import monotonic
from que.worker.settings import ANY_PRIORITY, MOST_IMPORTANT_PRIORITY

MAXIMUM_POLL_WALK = 100_000  # jobs one poll may pass over because other sessions hold them
QUEUE_START = JobKey(MOST_IMPORTANT_PRIORITY - 1, datetime.min.replace(tzinfo=UTC), 0)
"""A key before every job's (priorities are smallints): where a full walk starts
(in the database, from a run_at of -infinity)."""


@dataclass
class PollResult:
    rows: list[dict[str, Any]]
    more: bool
    """Whether ready jobs were left behind (no room for them, or not all looked at)."""
    resume_from: JobKey | None = None
    """The first job the poll locked, when the walk passed jobs held elsewhere to
    reach it: where a follow-up poll can start."""
    reach: int = ANY_PRIORITY
    """The highest priority the poll looked at: its least restrictive slot's limit."""


def poll(
    connection: Connection,
    queue: str,
    slots: Slots,
    *,
    held: Collection[int],
    now: datetime | None,
    start: JobKey | None = None,
) -> PollResult:
    """Lock the most important ready jobs of ``queue`` that ``slots`` accept.

    ``slots`` is used up by the jobs locked. One statement locks as many jobs as
    there are slots for the most important ready job, in ``(priority, run_at,
    id)`` order from ``start`` (the start of the queue by default); they fill the
    slots until one does not fit, and the ones that do not fit are unlocked again.
    """
    reach = slots.reach
    if reach is None:
        return PollResult([], more=True)
    # A full walk starts before every job, -infinity run_at included.
    from_key = (QUEUE_START.priority, "-infinity", QUEUE_START.id) if start is None else start
    candidates = db.run(
        connection,
        sql.POLL_JOBS,
        {
            "queue": queue,
            "now": now,
            "held": sorted(held),
            "slots": slots.limits,
            "walk": MAXIMUM_POLL_WALK,
            "from_priority": from_key[0],
            "from_run_at": from_key[1],
            "from_id": from_key[2],
        },
    )
    rows: list[dict[str, Any]] = []
    unwanted: list[int] = []
    for candidate in candidates:
        if unwanted or slots.fill(candidate["priority"]) is None:
            unwanted.append(candidate["id"])
        else:
            rows.append(candidate)
    # A job finished elsewhere between the walk's snapshot and its lock is let
    # go by the worker that claims it, which reads the row in a later snapshot.
    locks.unlock(connection, unwanted)
    resume_from = None
    if candidates and candidates[0]["head_id"] != candidates[0]["id"]:  # passed held jobs
        first = candidates[0]
        resume_from = JobKey(first["priority"], first["run_at"], first["id"])
    filled_room = bool(candidates) and len(candidates) == candidates[0]["room"]
    return PollResult(
        rows, more=bool(unwanted) or filled_room, resume_from=resume_from, reach=reach
    )


@dataclass
class _QueueState:
    interval: float  # seconds
    last_poll: float | None = None  # monotonic seconds
    last_full_poll: float | None = None
    more: bool = False
    room_after: list[int] = field(default_factory=list)
    reach: int = ANY_PRIORITY  # the highest priority the last poll looked at
    resume_from: JobKey | None = None


class PollSchedule:
    """When each queue is next due for a poll, and where that poll starts."""

    def __init__(self, intervals: Mapping[str, float]) -> None:
        self._queues = {name: _QueueState(interval) for name, interval in intervals.items()}

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    def reset(self) -> None:
        """Poll every queue at once, from its start (at start, and after a reconnect)."""
        for state in self._queues.values():
            state.last_poll = state.last_full_poll = state.resume_from = None
            state.more = False

    def due(self, queue: str, slots: Slots, now: float, *, hungry: bool) -> bool:
        """Whether to poll ``queue`` now, given the room there is (``now``: monotonic).

        Between poll intervals, while the buffer is ``hungry``, a queue is polled
        again if its last poll left jobs behind and the room has changed since, or
        if the room now takes priorities the last poll could not.
        """
        reach = slots.reach
        if reach is None:
            return False
        state = self._queues[queue]
        if state.last_poll is None or now - state.last_poll >= state.interval:
            return True
        left_jobs = state.more and slots.limits != state.room_after
        return hungry and (left_jobs or reach > state.reach)

    def start(self, queue: str, now: float) -> JobKey | None:
        """Where the next poll of ``queue`` starts: ``None`` for a full walk."""
        state = self._queues[queue]
        if state.last_full_poll is None or now - state.last_full_poll >= state.interval:
            return None
        return state.resume_from

    def polled(
        self, queue: str, result: PollResult, slots: Slots, now: float, *, full: bool
    ) -> None:
        """Record a poll; ``slots`` is the room left after it."""
        state = self._queues[queue]
        state.last_poll = now
        state.more = result.more
        state.room_after = slots.limits
        state.reach = result.reach
        if full:
            state.last_full_poll = now
            state.resume_from = result.resume_from
        elif result.resume_from is not None:
            state.resume_from = result.resume_from

    def left_jobs(self, queue: str, slots: Slots) -> None:
        """Jobs of ``queue`` were announced but not taken: poll for them, from the
        start of the queue, when there is room."""
        state = self._queues.get(queue)
        if state is not None:
            state.more = True
            state.room_after = slots.limits
            state.resume_from = None

    def forget_resume_points(self) -> None:
        """The locker let go of jobs that may still be ready: walk whole queues again."""
        for state in self._queues.values():
            state.resume_from = None

    def seconds_until_due(self, now: float | None = None) -> float:
        """Until the next poll that the interval alone makes due."""
        now = monotonic() if now is None else now
        waits = [
            0.0 if state.last_poll is None else state.last_poll + state.interval - now
            for state in self._queues.values()
        ]
        return max(0.0, min(waits, default=0.0))
