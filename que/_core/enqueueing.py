"""Turning ``enqueue`` calls into rows: validation, sync mode, and bulk enqueue.

Everything is checked before any SQL is sent, so a bad call raises a clear error
and inserts nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from que._core import db, registry, sql
from que._core.config import config
from que._core.running import run_job

if TYPE_CHECKING:
    from que.job import Job
from que._core.schema import (
    ENQUEUED_COLUMNS,
    JOB_SCHEMA_VERSION,
    MAXIMUM_QUEUE_LENGTH,
    PRIORITIES,
    json_text_problem,
    text_problem,
)
from que.errors import JobOptionError, SerializationError
from que.types import JobOptions, JobRow

MAXIMUM_TAGS = 5
MAXIMUM_TAG_JSON_LENGTH = 100  # the database measures a tag as JSON text, quotes included
MAXIMUM_JOB_CLASS_LENGTH = 200


OPTION_NAMES = frozenset(JobOptions.__annotations__)


@dataclass(slots=True)
class NewJob:
    """A validated job, ready to be inserted."""

    job: Job
    queue: str
    priority: int
    run_at: datetime | None
    delay: float  # seconds from now, when run_at is None
    job_class: str
    args_json: str
    kwargs_json: str
    data: str  # JSON text
    args: list[Any]  # as given, for a row that need not be read back from JSON
    kwargs: dict[str, Any]
    tags: list[str] | None

    def values(self, run_at: datetime | None) -> dict[str, Any]:
        """The values of :data:`~que._core.schema.ENQUEUED_COLUMNS` (JSON as text)."""
        return {
            "queue": self.queue,
            "priority": self.priority,
            "run_at": run_at,
            "job_class": self.job_class,
            "args": self.args_json,
            "kwargs": self.kwargs_json,
            "data": self.data,
            "job_schema_version": JOB_SCHEMA_VERSION,
        }

    def params(self) -> dict[str, Any]:
        """INSERT_JOB's parameters: run_at is left to the database when the clock is."""
        now = config.now()
        run_at = self.run_at if now is None else self.scheduled_at(now)
        return {**self.values(run_at), "delay": self.delay}

    def scheduled_at(self, now: datetime) -> datetime:
        """When the job becomes ready, given the time it is enqueued at."""
        if self.run_at is not None:
            return self.run_at
        return now + timedelta(seconds=self.delay) if self.delay else now

    def copy_row(self, job_id: int, run_at: datetime) -> tuple[Any, ...]:
        """The job's values in COPY_JOBS's column order."""
        values = self.values(run_at)
        return (job_id, *(values[column] for column in ENQUEUED_COLUMNS))

    def row(
        self, *, round_trip: bool = True, id: int | None = None, run_at: datetime | None = None
    ) -> JobRow:
        """The job's row, with the ``id`` and ``run_at`` the database gave it (none
        for a job run synchronously). ``round_trip`` reads the arguments back from
        their JSON, as a worker would see them; otherwise they are as given."""
        if round_trip:
            args, kwargs = json.loads(self.args_json), json.loads(self.kwargs_json)
            data = json.loads(self.data)
        else:
            args, kwargs = self.args, self.kwargs
            data = {} if self.tags is None else {"tags": self.tags}
        return JobRow(
            id=id,
            queue=self.queue,
            priority=self.priority,
            run_at=run_at or self.run_at or config.now(),
            job_class=self.job_class,
            error_count=0,
            last_error_message=None,
            last_error_backtrace=None,
            finished_at=None,
            expired_at=None,
            args=args,
            kwargs=kwargs,
            data=data,
            job_schema_version=JOB_SCHEMA_VERSION,
        )


@dataclass
class BulkEnqueue:
    """Jobs collected by ``Que.bulk_enqueue()``; their ``attrs`` fill in when it ends."""

    job_options: Mapping[str, Any]
    notify: bool
    pending: list[NewJob] = field(default_factory=list)
    """To insert when the block ends."""
    synchronous: list[NewJob] = field(default_factory=list)
    """To run when the block ends (sync mode, or ``run_synchronously`` classes)."""

    @property
    def jobs(self) -> list[Job]:
        return [new.job for new in self.pending + self.synchronous]


_bulk = threading.local()


def enqueue_job(
    job_class: type[Job], args: Sequence[Any], kwargs: Mapping[str, Any], options: Mapping[str, Any]
) -> Job:
    """Enqueue one job of ``job_class``: insert it, collect it, or run it (sync mode)."""
    batch: BulkEnqueue | None = getattr(_bulk, "batch", None)
    if batch is not None and batch.job_options:
        options = {**batch.job_options, **options}
    new = build(job_class, args, kwargs, options)
    synchronous = config.mode == "sync" or bool(job_class.setting("run_synchronously"))
    if batch is not None:  # run or inserted when the block ends, as Ruby's bulk_enqueue
        run_later = synchronous and not _scheduled(new)  # a future job is stored
        (batch.synchronous if run_later else batch.pending).append(new)
        return new.job
    if synchronous:
        return _run_synchronously(new)
    return _insert(new)


def _insert(new: NewJob) -> Job:
    (stored,) = db.execute(sql.INSERT_JOB, new.params())
    new.job.attrs = new.row(round_trip=False, id=stored["id"], run_at=stored["run_at"])
    return new.job


def enqueue_by_name(*args: Any, job_options: JobOptions, **kwargs: Any) -> Job:
    """Enqueue a job by its stored name, for classes this process may not define."""
    name = job_options.get("job_class")
    if not isinstance(name, str):
        raise JobOptionError(
            "job_class",
            "que.enqueue() needs job_options={'job_class': 'Name'}; to enqueue a class "
            "you can import, call MyJob.enqueue(...)",
        )
    # Sync mode must run it, so the class has to be found; otherwise the name is enough.
    if config.mode == "sync":
        job_class = registry.resolve(name)
    else:
        job_class = registry.find(name) or registry.fallback()
    return enqueue_job(job_class, args, kwargs, job_options)


def _run_synchronously(new: NewJob) -> Job:
    if _scheduled(new):  # due in the future: stored, not run
        return _insert(new)
    return _run_now(new)


def _run_now(new: NewJob) -> Job:
    new.job.attrs = new.row()
    return run_job(new.job.attrs, job=new.job, reraise=True).job


def _scheduled(new: NewJob) -> bool:
    """Whether the job is due after now, by que's clock."""
    now = config.now()
    if now is not None:
        return new.scheduled_at(now) > now
    if new.run_at is None:
        return new.delay > 0
    return bool(db.execute(sql.IS_FUTURE, {"at": new.run_at})[0]["future"])


@contextmanager
def bulk_enqueue(
    *, job_options: JobOptions | None = None, notify: bool = False
) -> Iterator[BulkEnqueue]:
    """Collect the jobs enqueued in the block and insert them in one statement.

    ``job_options`` apply to every job (a job's own options win). The notify
    triggers are skipped unless ``notify=True``: workers find the jobs by polling.
    Jobs that run synchronously run when the block ends, in order, after the
    insert (scheduled ones are inserted); if the block raises, nothing is
    inserted and nothing runs. If one of them raises, its error propagates and
    those after it do not run.
    """
    if getattr(_bulk, "batch", None) is not None:
        raise JobOptionError("bulk_enqueue", "Que.bulk_enqueue() blocks cannot be nested")
    _check_option_names(job_options or {})
    batch = BulkEnqueue(job_options=dict(job_options or {}), notify=notify)
    _bulk.batch = batch
    try:
        yield batch
    finally:
        _bulk.batch = None
    if batch.pending:
        _insert_batch(batch)
    for new in batch.synchronous:
        _run_now(new)  # judged due when it was enqueued


def _insert_batch(batch: BulkEnqueue) -> None:
    """Insert the batch with COPY: ids and the time first, then the rows."""
    with db.transaction() as connection:
        previous = None if batch.notify else db.run(connection, sql.SKIP_NOTIFY)[0]["previous"]
        (reserved,) = db.run(
            connection,
            sql.RESERVE_JOB_IDS,
            {
                "now": config.now(),
                "count": len(batch.pending),
            },
        )
        now, ids = reserved["now"], reserved["ids"]
        run_ats = [new.scheduled_at(now) for new in batch.pending]
        db.copy(connection, sql.COPY_JOBS, map(NewJob.copy_row, batch.pending, ids, run_ats))
        if not batch.notify:
            db.run(connection, sql.RESTORE_NOTIFY, {"previous": previous})
    for new, job_id, run_at in zip(batch.pending, ids, run_ats, strict=True):
        new.job.attrs = new.row(round_trip=False, id=job_id, run_at=run_at)


# -- validation ------------------------------------------------------------------


def build(
    job_class: type[Job], args: Sequence[Any], kwargs: Mapping[str, Any], options: Mapping[str, Any]
) -> NewJob:
    """Check a job's options and arguments and make its row's values."""
    if options:
        _check_option_names(options)
    name = _check_name(
        "job_class", options.get("job_class", job_class.job_name), MAXIMUM_JOB_CLASS_LENGTH
    )
    if "<locals>" in name:
        raise JobOptionError(
            "job_class",
            f"{job_class.__qualname__} is defined inside a function, so a worker could "
            "not find it by name: define it at module level, or name it with "
            f"`class {job_class.__name__}(Job, name='...')`",
        )
    run_at, delay = _check_run_at(
        options["run_at"] if "run_at" in options else job_class.setting("run_at")
    )
    tags = options.get("tags")
    if tags is not None:
        tags = _check_tags(tags)
    args, kwargs = list(args), dict(kwargs)
    return NewJob(
        job=job_class({}),
        queue=_check_name(
            "queue",
            options["queue"]
            if "queue" in options
            else (job_class.setting("queue") or config.default_queue),
            MAXIMUM_QUEUE_LENGTH,
        ),
        priority=_check_priority(
            options["priority"] if "priority" in options else job_class.setting("priority")
        ),
        run_at=run_at,
        delay=delay,
        job_class=name,
        args_json=_json_arguments(args, name),
        kwargs_json=_json_arguments(kwargs, name) if kwargs else "{}",
        data="{}" if tags is None else json.dumps({"tags": tags}),
        args=args,
        kwargs=kwargs,
        tags=tags,
    )


def _check_option_names(options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - OPTION_NAMES)
    if unknown:
        raise JobOptionError(
            unknown[0],
            f"unknown job option {unknown[0]!r}; job_options accepts "
            f"{', '.join(sorted(OPTION_NAMES))}",
        )


def _check_name(option: str, name: object, maximum: int) -> str:
    """A queue or job class name: a non-empty string the database's check accepts."""
    if not isinstance(name, str) or not name:
        raise JobOptionError(option, f"{option} must be a non-empty string, not {name!r}")
    if len(name) > maximum:
        raise JobOptionError(
            option,
            f"{option} names are limited to {maximum} characters; {name[:20]!r}... has {len(name)}",
        )
    problem = text_problem(name)
    if problem is not None:
        raise JobOptionError(option, f"{option} {name!r} {problem}")
    return name


def _check_priority(priority: object) -> int:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise JobOptionError("priority", f"priority must be an integer, not {priority!r}")
    if priority not in PRIORITIES:
        raise JobOptionError(
            "priority",
            f"priority must be between {PRIORITIES.start} and "
            f"{PRIORITIES.stop - 1} (a smallint), not {priority}",
        )
    return priority


def _check_run_at(run_at: object) -> tuple[datetime | None, float]:
    if run_at is None:
        return None, 0.0
    if isinstance(run_at, timedelta):
        return None, run_at.total_seconds()
    if isinstance(run_at, datetime):
        if run_at.tzinfo is None:
            raise JobOptionError(
                "run_at",
                f"run_at must be timezone-aware, not the naive {run_at!r}: "
                "use datetime.now(timezone.utc) + ..., or pass a timedelta",
            )
        return run_at, 0.0
    raise JobOptionError(
        "run_at", f"run_at must be an aware datetime or a timedelta, not {run_at!r}"
    )


def _check_tags(tags: object) -> list[str]:
    if isinstance(tags, str) or not isinstance(tags, Sequence):
        raise JobOptionError("tags", f"tags must be a list of strings, not {tags!r}")
    if len(tags) > MAXIMUM_TAGS:
        raise JobOptionError("tags", f"a job may have at most {MAXIMUM_TAGS} tags, not {len(tags)}")
    for tag in tags:
        if not isinstance(tag, str):
            raise JobOptionError("tags", f"tags must be strings, not {tag!r}")
        problem = text_problem(tag)
        if problem is not None:
            raise JobOptionError("tags", f"tag {tag!r} {problem}")
        if len(json.dumps(tag, ensure_ascii=False)) > MAXIMUM_TAG_JSON_LENGTH:
            raise JobOptionError(
                "tags",
                f"tag {tag[:20]!r}... is too long: the database allows "
                f"{MAXIMUM_TAG_JSON_LENGTH} characters of JSON text, quotes and escapes "
                "included (98 plain characters)",
            )
    return list(tags)


_ENCODER = json.JSONEncoder(allow_nan=False)  # NaN and infinities are not JSON


def _json_arguments(arguments: list[Any] | dict[str, Any], job_class: str) -> str:
    try:
        text = _ENCODER.encode(arguments)
    except (TypeError, ValueError) as error:
        raise SerializationError(
            f"the arguments of {job_class} cannot be stored as JSON ({error}); pass plain "
            "str, int, float, bool, None, list and dict values (e.g. an id, or a "
            "datetime's isoformat())"
        ) from error
    problem = json_text_problem(
        arguments, text, "args" if isinstance(arguments, list) else "kwargs"
    )
    if problem is not None:
        raise SerializationError(f"the arguments of {job_class} cannot be stored: {problem}")
    return text
