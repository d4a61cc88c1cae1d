"""Assertions about enqueued jobs: ``que_jobs.assert_enqueued(...)`` and friends.

Expected values match partially: an expected dict needs only the keys it names,
lists match element by element, ``ANY`` matches anything, and times match within
a tolerance. Failures list the jobs that were enqueued instead, showing just the
fields the assertion asked about.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from que import Job, Que, WorkSummary

DEFAULT_TIME_TOLERANCE = timedelta(seconds=1)


class _Anything:
    """Matches any value; its repr is ``ANY``."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Anything()


@dataclass(frozen=True)
class EnqueuedJob:
    """One row of ``que_jobs``, as tests see it."""

    id: int
    """The row's id."""
    job_class: str
    """The stored class name."""
    args: list[Any]
    """Positional arguments, as JSON gave them back."""
    kwargs: dict[str, Any]
    """Keyword arguments, as JSON gave them back."""
    queue: str
    """Its queue."""
    priority: int
    """Its priority (lower runs first)."""
    run_at: datetime
    """When it is (or was) due."""
    tags: list[str]
    """Its tags (``[]`` for none)."""
    error_count: int
    """How often it has failed."""
    last_error_message: str | None
    """The last failure, as stored."""
    finished_at: datetime | None
    """When it was finished, if it was."""
    expired_at: datetime | None
    """When it was expired, if it was."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> EnqueuedJob:
        """The test's view of a ``que_jobs`` row."""
        return cls(
            id=row["id"],
            job_class=row["job_class"],
            args=row["args"],
            kwargs=row["kwargs"],
            queue=row["queue"],
            priority=row["priority"],
            run_at=row["run_at"],
            tags=list(row["data"].get("tags", [])),
            error_count=row["error_count"],
            last_error_message=row["last_error_message"],
            finished_at=row["finished_at"],
            expired_at=row["expired_at"],
        )

    def describe(self, fields: Sequence[str]) -> str:
        """``job_class(field=value, ...)`` with only the given fields."""
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in fields)
        return f"{self.job_class}({shown}) [id={self.id}]"


def job_name(job_class: type[Job] | str) -> str:
    """The name a job class is stored under."""
    return job_class if isinstance(job_class, str) else job_class.job_name


def matches(expected: Any, actual: Any) -> bool:
    """Partial, recursive equality: dicts need only the expected keys."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return all(key in actual and matches(value, actual[key]) for key, value in expected.items())
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(map(matches, expected, actual))
    return bool(expected == actual)


class JobQuery:
    """Criteria for finding enqueued jobs, and how to say what they were."""

    def __init__(
        self,
        job_class: type[Job] | str | None,
        criteria: Mapping[str, Any],
        tolerance: timedelta,
    ) -> None:
        self.job_class = None if job_class is None else job_name(job_class)
        self.criteria = dict(criteria)
        self.tolerance = tolerance
        unknown = set(self.criteria) - _CRITERIA
        if unknown:
            raise TypeError(
                f"unknown job field {sorted(unknown)[0]!r}; assertions accept "
                f"{', '.join(sorted(_CRITERIA))}"
            )

    def __str__(self) -> str:
        parts = [f"job_class={self.job_class!r}"] if self.job_class else []
        parts += [f"{name}={value!r}" for name, value in self.criteria.items()]
        return ", ".join(parts) or "any job"

    @property
    def fields(self) -> list[str]:
        """The fields a failure shows: the ones asked about, else the arguments."""
        return list(self.criteria) or ["args", "kwargs"]

    def accepts(self, job: EnqueuedJob) -> bool:
        if self.job_class is not None and job.job_class != self.job_class:
            return False
        return all(self._field_matches(name, value, job) for name, value in self.criteria.items())

    def _field_matches(self, name: str, expected: Any, job: EnqueuedJob) -> bool:
        actual = getattr(job, name)
        if name == "run_at" and isinstance(expected, (datetime, timedelta)):
            target = _now() + expected if isinstance(expected, timedelta) else expected
            return bool(abs(actual - target) <= self.tolerance)
        if name == "tags" and isinstance(expected, (list, tuple, set)):
            return set(expected) <= set(actual)
        return matches(expected, actual)


_CRITERIA = {"args", "kwargs", "queue", "priority", "run_at", "tags", "error_count"}


def _now() -> datetime:
    return Que.clock() or datetime.now(UTC)


class JobsAssertions:
    """The jobs in the queue table, with assertions and an inline runner.

    Built by the ``que_jobs`` fixture; ``capture()`` gives one that only sees
    the jobs enqueued inside a block.
    """

    def __init__(self, *, after_id: int = 0) -> None:
        self._after_id = after_id

    # -- reading -----------------------------------------------------------------

    def all(self) -> list[EnqueuedJob]:
        """Every job in the table (finished and expired ones too), oldest first."""
        return [EnqueuedJob.from_row(row) for row in Que.jobs() if row["id"] > self._after_id]

    def of(self, job_class: type[Job] | str) -> list[EnqueuedJob]:
        """The jobs of one class."""
        name = job_name(job_class)
        return [job for job in self.all() if job.job_class == name]

    def __len__(self) -> int:
        return len(self.all())

    def __iter__(self) -> Iterator[EnqueuedJob]:
        return iter(self.all())

    def __repr__(self) -> str:
        return f"<que_jobs: {len(self)} job(s)>"

    def clear(self) -> None:
        """Delete every job."""
        Que.clear()

    @contextmanager
    def capture(self) -> Iterator[JobsAssertions]:
        """Yield a view of only the jobs enqueued inside the block."""
        jobs = self.all()
        yield JobsAssertions(after_id=jobs[-1].id if jobs else self._after_id)

    # -- asserting -----------------------------------------------------------------

    def assert_enqueued(
        self,
        job_class: type[Job] | str | None = None,
        *,
        count: int | None = None,
        tolerance: timedelta = DEFAULT_TIME_TOLERANCE,
        **criteria: Any,
    ) -> EnqueuedJob:
        """Assert a matching job is enqueued (exactly ``count`` of them, if given).

        Criteria: ``args``, ``kwargs``, ``queue``, ``priority``, ``run_at`` (a
        datetime, or a timedelta from now, within ``tolerance``), ``tags`` (a
        subset), ``error_count``. Returns the first matching job.
        """
        __tracebackhide__ = True
        query = JobQuery(job_class, criteria, tolerance)
        jobs = self.all()
        found = [job for job in jobs if query.accepts(job)]
        if not found or (count is not None and len(found) != count):
            wanted = "a job" if count is None else f"{count} job(s)"
            raise AssertionError(
                f"Expected {wanted} matching {query}; found {len(found)}.\n" + _listing(jobs, query)
            )
        return found[0]

    def assert_not_enqueued(
        self,
        job_class: type[Job] | str | None = None,
        *,
        tolerance: timedelta = DEFAULT_TIME_TOLERANCE,
        **criteria: Any,
    ) -> None:
        """Assert no job matches."""
        __tracebackhide__ = True
        query = JobQuery(job_class, criteria, tolerance)
        found = [job for job in self.all() if query.accepts(job)]
        if found:
            raise AssertionError(
                f"Expected no job matching {query}; found {len(found)}.\n"
                + _listing(found, query, heading="Matching jobs")
            )

    # -- running -------------------------------------------------------------------

    def work(
        self,
        *,
        queue: str | None = None,
        limit: int | None = None,
        recursive: bool = True,
        include_scheduled: bool = False,
        reraise: bool = False,
    ) -> WorkSummary:
        """Run ready jobs in this thread through the real code path: ``Que.work``.

        ``recursive`` (default): also run the jobs that jobs enqueue.
        """
        return Que.work(
            queue=queue,
            limit=limit,
            recursive=recursive,
            include_scheduled=include_scheduled,
            reraise=reraise,
        )

    def drain(
        self,
        *,
        queue: str | None = None,
        limit: int | None = None,
        recursive: bool = True,
        include_scheduled: bool = False,
    ) -> WorkSummary:
        """Like ``work``, but a job's error fails the test (``reraise=True``)."""
        return self.work(
            queue=queue,
            limit=limit,
            recursive=recursive,
            include_scheduled=include_scheduled,
            reraise=True,
        )


def _listing(
    jobs: Sequence[EnqueuedJob], query: JobQuery, *, heading: str = "Enqueued jobs"
) -> str:
    if not jobs:
        return (
            "No jobs are enqueued. (Was it run inline in sync mode, already worked, "
            "or enqueued on another connection?)"
        )
    lines = [f"{heading} ({len(jobs)}):"]
    lines += [f"  {job.describe(query.fields)}" for job in jobs[:20]]
    if len(jobs) > 20:
        lines.append(f"  ... and {len(jobs) - 20} more")
    return "\n".join(lines)
