"""Running one job: the single code path of sync mode, the inline runner and the workers.

A job with a row runs inside a transaction on this thread's connection (a
savepoint if one is already open), so its writes and its resolve action (by
default ``destroy``) commit together. On an exception the transaction rolls
back, ``handle_error`` decides (retry or expire), and ``Que.error_notifier``
hears of it if ``handle_error`` says so.

On an idle connection that is not in autocommit mode (a worker's pool
connection), the transaction begins with the job's first statement, as psycopg
does, rather than with an empty ``BEGIN``. The worker pool takes over the
default ``destroy`` of the jobs that succeed (``defer_destroy``) and deletes
them many at a time once their transactions have committed, as DESIGN's
"batch the default resolve" and Ruby Que's separate destroy statement have it;
a resolve helper the job calls itself stays in the job's transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import pq

from que import db, registry
from que.config import config
from que.connection import Connection
from que.errors import Error, UnknownJobClass
from que.job import Job, error_message
from que.log import level_number, log_event
from que.middleware import run_through


@dataclass(frozen=True)
class JobResult:
    """What happened when a job ran."""

    job: Job
    error: Exception | None
    elapsed: float  # seconds
    destroy_deferred: bool = False
    """The job succeeded and its row is still to be destroyed by the caller."""

    @property
    def succeeded(self) -> bool:
        return self.error is None


def run_job(
    row: dict[str, Any],
    *,
    job: Job | None = None,
    reraise: bool = False,
    defer_destroy: bool = False,
) -> JobResult:
    """Run the job stored in ``row`` and resolve it.

    ``job`` is the instance to run when the caller has one already (sync mode);
    otherwise the class is found from ``row["job_class"]``. With ``reraise`` the
    job's error is raised again once it has been handled. With ``defer_destroy``
    the caller takes over the default destroy of a job that succeeded without
    resolving itself (see ``JobResult.destroy_deferred``), after the job's
    transaction has committed; it holds the job's lock until then.
    """
    error: Exception | None = None
    if job is None:
        try:
            job = registry.resolve(row["job_class"])(row)
        except UnknownJobClass as unknown:
            job, error = Job(row), unknown
    started = time.monotonic()
    deferred = False
    if error is None:
        error, deferred = _perform(job, defer_destroy=defer_destroy)
    elapsed = time.monotonic() - started
    if error is None:
        level = level_number(job.log_level(elapsed))
        if level is not None:
            log_event(level, "job_worked", job_id=job.id, job_class=row["job_class"],
                      elapsed=round(elapsed, 6))
        return JobResult(job, None, elapsed, destroy_deferred=deferred)
    _handle_error(job, error)
    log_event(logging.ERROR, "job_errored", job_id=job.id, job_class=row["job_class"],
              error_count=job.error_count, error=error_message(error), elapsed=round(elapsed, 6))
    if reraise:
        raise error
    return JobResult(job, error, elapsed)


def _perform(job: Job, *, defer_destroy: bool) -> tuple[Exception | None, bool]:
    """Run the job and its resolve action; return its exception, if any, and
    whether its destroy was left to the caller."""
    args, kwargs = job.attrs["args"], job.attrs["kwargs"]
    deferred = False

    def work() -> None:
        nonlocal deferred
        job.run(*args, **kwargs)
        if job.resolution is not None:
            return
        if defer_destroy and _destroy_can_wait(job):
            job.resolution, deferred = "destroyed", True
        else:
            job.default_resolve_action()

    def through_middleware() -> None:
        if not run_through(config.job_middleware, (job,), work):
            raise Error("a job middleware did not call call_next(), so the job did not run")

    try:
        if job.id is None:
            through_middleware()
        else:
            with db.checkout() as connection, _job_transaction(connection):
                through_middleware()
    except Exception as error:
        job.resolution = None  # whatever it resolved was rolled back
        return error, False
    return None, deferred


def _idle(connection: Connection) -> bool:
    return connection.info.transaction_status == pq.TransactionStatus.IDLE


@contextmanager
def _job_transaction(connection: Connection) -> Iterator[None]:
    """The transaction a job runs in: a savepoint inside an open transaction, a
    real one on an autocommit connection, else psycopg's implicit transaction,
    which the job's first statement begins."""
    if connection.autocommit or not _idle(connection):
        with connection.transaction():
            yield
        return
    try:
        yield
    except BaseException:
        connection.rollback()
        raise
    if not _idle(connection):
        connection.commit()


def _destroy_can_wait(job: Job) -> bool:
    """Whether the job's resolve action is the plain destroy a batch can do for it."""
    return type(job).default_resolve_action is Job.default_resolve_action


def _handle_error(job: Job, error: Exception) -> None:
    """Let the job decide what its failure means, then notify if it asks to."""
    job.error = error
    try:
        notify = job.handle_error(error)
        errors: list[BaseException] = [error] if notify else []
    except Exception as handler_error:
        log_event(logging.ERROR, "handle_error_failed", job_id=job.id,
                  error=error_message(handler_error))
        errors = [error, handler_error]
    if job.resolution is None:  # left as it was, the job would be ready again at once
        Job.handle_error(job, error)
    for reported in errors:
        _notify(reported, job)


def _notify(error: BaseException, job: Job) -> None:
    notifier = config.error_notifier
    if notifier is None:
        return
    try:
        notifier(error, job.attrs)
    except Exception as notifier_error:
        log_event(logging.ERROR, "error_notifier_failed", job_id=job.id,
                  error=error_message(notifier_error))
