"""Time travel for tests: freezegun's frozen time, which que's clock follows too.

Every time que computes or compares (a job's default ``run_at``, the "ready"
test, ``retry_in``, finish and expire stamps) comes from ``Que.clock``; the
test fixtures point it at Python's clock, which freezegun freezes and moves.
The database's own ``now()`` is never moved, and que does not rely on it here.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from typing import Any

from que import Que, WorkSummary

# Modules whose waits and timeouts must keep real time while the test's time is
# frozen, or connecting and waiting for workers would hang.
REAL_TIME_MODULES = ("psycopg", "psycopg_pool", "que.worker", "que_testing.worker")
# Modules que_testing may import lazily that bind ``datetime`` names: imported
# while time is frozen, they would keep freezegun's class after it stops.
LOAD_BEFORE_FREEZING = ("que.worker", "que_testing.worker", "que_testing.assertions")


def wall_clock() -> datetime:
    """Python's current time, aware, in UTC: what que uses as ``now`` in tests."""
    return datetime.now(UTC)


class TimeTravel:
    """Frozen time for one test: ``advance`` it and jobs become ready."""

    def __init__(self, start: datetime | None = None) -> None:
        from freezegun import freeze_time

        self._freezer = freeze_time(start or wall_clock(), ignore=list(REAL_TIME_MODULES))
        self._frozen: Any = None

    def start(self) -> TimeTravel:
        """Freeze time (the ``que_time`` fixture does this for you)."""
        for module in LOAD_BEFORE_FREEZING:
            importlib.import_module(module)
        self._frozen = self._freezer.start()
        return self

    def stop(self) -> None:
        """Let time run again."""
        self._freezer.stop()

    @property
    def now(self) -> datetime:
        """The test's current time (aware, UTC)."""
        return wall_clock()

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        days: float = 0,
    ) -> datetime:
        """Move time forward; return the new time."""
        step = (delta or timedelta()) + timedelta(
            seconds=seconds, minutes=minutes, hours=hours, days=days
        )
        if step < timedelta():
            raise ValueError(f"time travel only goes forward; use move_to() for {step}")
        self._frozen.tick(step)
        return self.now

    def move_to(self, when: datetime) -> None:
        """Jump to ``when`` (an aware datetime), forward or back."""
        if when.tzinfo is None:
            raise ValueError(f"move_to() needs a timezone-aware datetime, not {when!r}")
        self._frozen.move_to(when)

    def advance_and_work(self, delta: timedelta | None = None, **units: float) -> WorkSummary:
        """Move time forward, then run the jobs that became ready."""
        self.advance(delta, **units)
        return Que.work()
