"""Polling: when each queue is due, and how one poll picks and locks jobs.

A queue is polled when the pool starts, then again as soon as the last poll
left ready jobs behind and there is room for more, otherwise once its poll
interval has passed. A poll takes only what the slots (idle workers by
threshold, free buffer places, displaceable buffered jobs) can accept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from que import db, sql
from que.connection import Connection
from que.worker import locks
from que.worker._clock import monotonic
from que.worker.buffer import Slots

MAXIMUM_POLL_WALK = 100_000  # jobs one poll may pass over because other sessions hold them


@dataclass
class PollResult:
    rows: list[dict[str, Any]]
    more: bool
    """Whether ready jobs were left behind (no room for them, or not all looked at)."""


def poll(
    connection: Connection,
    queue: str,
    slots: Slots,
    *,
    held: Collection[int],
    now: datetime | None,
) -> PollResult:
    """Lock the most important ready jobs of ``queue`` that ``slots`` accept.

    ``slots`` is used up by the jobs locked. One statement locks as many jobs as
    there are slots, in ``(priority, run_at, id)`` order; they fill the slots
    until one does not fit, and the ones that do not fit are unlocked again.
    """
    if not slots:
        return PollResult([], more=True)
    limit = len(slots)
    candidates = db.run(connection, sql.POLL_JOBS, {
        "queue": queue, "now": now, "held": sorted(held), "limit": limit,
        "lowest": slots.lowest, "walk": MAXIMUM_POLL_WALK,
    })
    chosen: dict[int, int] = {}  # job id -> the limit of the slot it filled
    unwanted: list[int] = []
    for candidate in candidates:
        filled = None if unwanted else slots.fill(candidate["priority"])
        if filled is None:
            unwanted.append(candidate["id"])
        else:
            chosen[candidate["id"]] = filled
    locks.unlock(connection, unwanted)
    rows = locks.check_rows(connection, list(chosen), now)
    found = {row["id"] for row in rows}
    for job_id, filled in chosen.items():
        if job_id not in found:
            slots.free(filled)
    return PollResult(rows, more=bool(unwanted) or len(candidates) == limit)


@dataclass
class _QueueState:
    interval: float  # seconds
    last_poll: float | None = None  # monotonic seconds
    more: bool = False
    room_after: list[int] = field(default_factory=list)


class PollSchedule:
    """When each queue is next due for a poll."""

    def __init__(self, intervals: Mapping[str, float]) -> None:
        self._queues = {name: _QueueState(interval) for name, interval in intervals.items()}

    @property
    def queues(self) -> list[str]:
        return list(self._queues)

    def reset(self) -> None:
        """Poll every queue at once (at start, and after a reconnect)."""
        for state in self._queues.values():
            state.last_poll = None
            state.more = False

    def due(self, queue: str, slots: Slots, now: float) -> bool:
        """Whether to poll ``queue`` now, given the room there is (``now``: monotonic)."""
        if not slots:
            return False
        state = self._queues[queue]
        if state.last_poll is None or now - state.last_poll >= state.interval:
            return True
        return state.more and slots.limits != state.room_after

    def polled(self, queue: str, result_more: bool, slots: Slots, now: float) -> None:
        state = self._queues[queue]
        state.last_poll = now
        state.more = result_more
        state.room_after = slots.limits

    def left_jobs(self, queue: str, slots: Slots) -> None:
        """Jobs of ``queue`` were announced but not taken: poll for them when there is room."""
        state = self._queues.get(queue)
        if state is not None:
            state.more = True
            state.room_after = slots.limits

    def seconds_until_due(self, now: float | None = None) -> float:
        """Until the next poll that the interval alone makes due."""
        now = monotonic() if now is None else now
        waits = [
            0.0 if state.last_poll is None else state.last_poll + state.interval - now
            for state in self._queues.values()
        ]
        return max(0.0, min(waits, default=0.0))
