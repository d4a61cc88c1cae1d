"""The shapes que's API is typed with: a job's row, its options, and the callables
you can plug in. Import them for your own annotations."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeAlias, TypedDict


class JobRow(TypedDict, total=False):
    """A row of ``que_jobs`` as que reads it, and what ``Job.attrs`` holds.

    ``id`` is ``None`` for a job run synchronously, which has no row; a job
    collected by ``Que.bulk_enqueue()`` has an empty one until the block ends.
    """

    id: int | None
    priority: int
    run_at: datetime | None  # None only for a job run synchronously on the database's clock
    job_class: str
    error_count: int
    last_error_message: str | None
    last_error_backtrace: str | None
    queue: str
    finished_at: datetime | None
    expired_at: datetime | None
    args: list[Any]
    kwargs: dict[str, Any]
    data: dict[str, Any]
    job_schema_version: int


class JobOptions(TypedDict, total=False):
    """What ``job_options`` may hold."""

    queue: str
    priority: int
    run_at: datetime | timedelta
    job_class: str
    tags: Sequence[str]


class ErrorNotifier(Protocol):
    """Told of every job error that ``handle_error`` wants reported."""

    def __call__(self, error: BaseException, job_row: Mapping[str, Any] | None) -> object: ...


class Clock(Protocol):
    """The time que uses: ``None`` means the database's ``now()``."""

    def __call__(self) -> datetime | None: ...


LogFormatter: TypeAlias = Callable[[dict[str, Any]], str | None]
"""Turns a log event into the line to log, or ``None`` to drop it."""
JobMiddleware: TypeAlias = Callable[[Any, Callable[[], None]], object]
"""``middleware(job, call_next)``: must call ``call_next()`` for the job to run."""
SQLMiddleware: TypeAlias = Callable[[str, Any, Callable[[], None]], object]
"""``middleware(sql, params, call_next)``: must call ``call_next()`` for the SQL to run."""
