"""``Job``: subclass it, write ``run``, and enqueue with ``MyJob.enqueue(...)``.

Class settings (``queue``, ``priority``, ``run_at``, ``retry_interval``,
``maximum_retry_count``, ``run_synchronously``) are inherited; a callable setting
is called (``retry_interval`` with the error count). Inside ``run`` the resolve
helpers ``destroy``, ``finish``, ``expire`` and ``retry_in`` act on the job's row
through this thread's connection, so inside ``Que.transaction()`` they commit or
roll back with the job's own writes.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, overload

from que._core import db, registry, sql
from que._core.config import config
from que._core.enqueueing import enqueue_job
from que._core.log import log_event
from que._core.schema import error_backtrace, error_message
from que.errors import JobDefinitionError

if TYPE_CHECKING:
    from typing import Self

    from que.types import JobOptions

from que.types import JobRow

Resolution: TypeAlias = Literal["destroyed", "finished", "expired", "retried"]


def default_retry_interval(error_count: int) -> float:
    """Que's back-off: 4, 19, 84, 259, ... seconds after the 1st, 2nd, 3rd, 4th failure."""
    return float(error_count**4 + 3)


class Job:
    """A unit of work stored as a row of ``que_jobs``. Subclass it and define ``run``."""

    job_name: ClassVar[str] = "que.job.Job"
    """The name stored in ``job_class``; defaults to the class's import path."""

    queue: ClassVar[str | Callable[[], str] | None] = None
    """``None`` means ``Que.default_queue``."""
    priority: ClassVar[int | Callable[[], int]] = 100
    """Lower runs first; a smallint."""
    run_at: ClassVar[datetime | timedelta | Callable[[], datetime | timedelta] | None] = None
    """When new jobs become ready: an aware datetime, a delay, or ``None`` for now."""
    retry_interval: ClassVar[float | Callable[[int], float]] = staticmethod(default_retry_interval)
    """Seconds to wait after a failure; a callable gets the error count."""
    maximum_retry_count: ClassVar[int | Callable[[], int | None] | None] = 15
    """Expire instead of retrying once ``error_count`` exceeds this; ``None``: retry forever."""
    run_synchronously: ClassVar[bool | Callable[[], bool]] = False
    """Run at enqueue, in the caller's thread, whatever ``Que.mode`` is."""

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if inspect.iscoroutinefunction(cls.run) or inspect.isasyncgenfunction(cls.run):
            raise JobDefinitionError(
                f"{cls.__qualname__}.run is an async function, which que's workers cannot "
                "await yet: its coroutine would never run. Write `def run(...)`, and call "
                "async code from it with asyncio.run(...)"
            )
        cls.job_name = name if name is not None else f"{cls.__module__}.{cls.__qualname__}"
        if "<locals>" not in cls.job_name:  # a worker could never find it by name
            registry.register(cls)

    def __init__(self, attrs: JobRow) -> None:
        self.attrs: JobRow = attrs
        """The job's row, as a dict of column name to value."""
        self.resolution: Resolution | None = None
        """What has been done with the row, once a resolve helper ran."""
        self.error: Exception | None = None
        """The error of the current run, while ``handle_error`` runs."""

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} id={self.id} job_class={self.attrs.get('job_class')!r}>"

    # -- the work ----------------------------------------------------------------

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Do the job. Override it; the job's args and kwargs are passed in."""
        raise NotImplementedError(f"{type(self).__qualname__} must define run()")

    def default_resolve_action(self) -> None:
        """Called after ``run`` returns without resolving the job: destroy it."""
        self.destroy()

    def handle_error(self, error: Exception) -> bool:
        """Decide what a failure means; the return value says whether to notify.

        By default: expire once ``error_count`` exceeds ``maximum_retry_count``,
        else retry after ``retry_interval(error_count)`` seconds.
        """
        maximum = self.setting("maximum_retry_count")
        if maximum is not None and self.error_count > maximum:
            return self.expire()
        return self.retry_in(self.setting("retry_interval", self.error_count))

    def log_level(self, elapsed: float) -> str | int | None:
        """The level of this job's ``job_worked`` event; ``None`` logs nothing."""
        return "debug"

    # -- the row -----------------------------------------------------------------

    @property
    def id(self) -> int | None:
        """The row's id; ``None`` for a job run synchronously, which has no row."""
        return self.attrs.get("id")

    @property
    def error_count(self) -> int:
        """Failures so far, counting the current one while ``handle_error`` runs."""
        stored = int(self.attrs.get("error_count", 0))
        return stored + 1 if self.error is not None else stored

    # -- resolve helpers -----------------------------------------------------------

    def destroy(self) -> bool:
        """Delete the job's row: it will not run again."""
        return self._resolve("destroyed", sql.DESTROY_JOB)

    def finish(self) -> bool:
        """Mark the job finished, keeping the row for later queries."""
        return self._resolve("finished", sql.FINISH_JOB)

    def expire(self) -> bool:
        """Mark the job expired: kept in the table, never retried."""
        return self._resolve("expired", sql.EXPIRE_JOB, **self._error_fields())

    def retry_in(self, seconds: float | timedelta) -> bool:
        """Run the job again after ``seconds``, counting one more error."""
        delay = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        return self._resolve("retried", sql.RETRY_JOB, delay=delay, **self._error_fields())

    def _error_fields(self) -> dict[str, str | None]:
        if self.error is None:
            return {"message": None, "backtrace": None}
        return {"message": error_message(self.error), "backtrace": error_backtrace(self.error)}

    def _resolve(self, resolution: Resolution, statement: str, **params: Any) -> bool:
        """Apply a resolve helper. Always true, as in Ruby Que, so that ``return
        self.retry_in(10)`` in ``handle_error`` asks for the error to be notified."""
        self.resolution = resolution
        if self.id is None:
            return True
        rows = db.execute(statement, {"id": self.id, "now": config.now(), **params})
        if not rows:
            log_event(
                logging.WARNING,
                "job_race_condition",
                job_id=self.id,
                action=resolution,
                detail="the job's row was already gone",
            )
        return True

    # -- settings and enqueue ------------------------------------------------------

    @overload
    @classmethod
    def setting(cls, name: Literal["queue"]) -> str | None: ...
    @overload
    @classmethod
    def setting(cls, name: Literal["priority"]) -> int: ...
    @overload
    @classmethod
    def setting(cls, name: Literal["run_at"]) -> datetime | timedelta | None: ...
    @overload
    @classmethod
    def setting(cls, name: Literal["retry_interval"], error_count: int) -> float: ...
    @overload
    @classmethod
    def setting(cls, name: Literal["maximum_retry_count"]) -> int | None: ...
    @overload
    @classmethod
    def setting(cls, name: Literal["run_synchronously"]) -> bool: ...

    @classmethod
    def setting(cls, name: str, error_count: int | None = None) -> object:
        """A class setting; a callable one is called (``retry_interval`` with the
        error count)."""
        value = getattr(cls, name)
        if not callable(value):
            return value
        return value() if error_count is None else value(error_count)

    @classmethod
    def enqueue(cls, *args: Any, job_options: JobOptions | None = None, **kwargs: Any) -> Self:
        """Store a job of this class (or run it now in sync mode) and return it.

        Runs on this thread's connection, so it commits or rolls back with the
        caller's transaction. Options go in ``job_options``: ``queue``,
        ``priority``, ``run_at``, ``job_class``, ``tags``.
        """
        job = enqueue_job(cls, args, kwargs, job_options or {})
        assert isinstance(job, cls)
        return job


registry.register_fallback(Job)
