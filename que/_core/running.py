"""Running one job: the single code path of sync mode, the inline runner and the workers.

A job with a row runs inside a transaction on this thread's connection (a
savepoint if one is already open), so its writes and its resolve action (by
default ``destroy``) commit together. On an exception the transaction rolls
back, ``handle_error`` decides (retry or expire) in a transaction of its own,
and ``Que.error_notifier`` hears of it if ``handle_error`` says so.

On an idle connection that is not in autocommit mode (a worker's pool
connection), the transaction begins with the job's first statement, as psycopg
does, rather than with an empty ``BEGIN``.

The worker pool passes a :class:`Guard`: each transaction that runs the job or
records its failure begins by taking the worker's own lock on the job, so that
nothing about a job commits unless this worker holds it (see
``docs/explanation/locking.md``, "When a lock is lost"). A failure of the connection itself
is no failure of the job: it is raised as :class:`~que.errors.ConnectionLost`,
and the job, untouched, runs again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from psycopg import pq

from que._core import db, registry
from que._core.config import config
from que._core.connection import Connection
from que._core.log import level_number, log_event
from que._core.middleware import run_through
from que._core.schema import error_message
from que.errors import ConnectionLost, Error, JobExited, LockLost
from que.types import JobRow

if TYPE_CHECKING:
    from que.job import Job

JSON_COLUMNS = ("args", "kwargs", "data")
"""Columns a guarded claim reads as text, for the runner to decode: a row that
cannot be decoded is that job's error, not the reader's."""


@dataclass(frozen=True)
class JobResult:
    """What happened when a job ran."""

    job: Job
    """The job that ran, with its row."""
    error: Exception | None
    """What it raised, or ``None``."""
    elapsed: float
    """Seconds it took."""

    @property
    def succeeded(self) -> bool:
        """Whether it ran without an error."""
        return self.error is None


class Guard(Protocol):
    """The worker pool's hold on one job, taken again in each of its transactions."""

    def claim(self, connection: Connection) -> dict[str, Any] | None:
        """Take the worker's lock in the transaction just begun and read the job's
        row (its JSON columns as text); ``None`` if the job is running elsewhere
        or no longer there to run."""

    def reclaim(self, connection: Connection) -> bool:
        """Take the worker's lock again, in a later transaction of the same job."""


def run_job(row: JobRow, *, job: Job | None = None, reraise: bool = False) -> JobResult:
    """Run the job stored in ``row`` and resolve it (sync mode and the inline runner).

    ``job`` is the instance to run when the caller has one already (sync mode);
    otherwise the class is found from ``row["job_class"]``. With ``reraise`` the
    job's error is raised again once it has been handled. Exceptions that are
    not ``Exception`` (``KeyboardInterrupt``, ``SystemExit``) propagate: the
    caller owns the thread.
    """
    started = time.monotonic()
    error: Exception | None = None
    session = _Session()
    try:
        if job is None:
            job = _instantiate(row)
        if job.id is None:
            _work(job)
        else:
            with _job_connection(session):
                _work(job)
    except Exception as failure:
        error = failure
    result = _finish(job or registry.fallback()(row), error, started, guard=None, session=session)
    if reraise and result.error is not None:
        raise result.error
    return result


def run_guarded_job(guard: Guard) -> JobResult | None:
    """Run a job the worker pool has locked; ``None`` if it was not there to run.

    A ``BaseException`` the job raises is that job's error here: a worker
    thread never receives signals, and one job must not stop the pool.
    """
    started = time.monotonic()
    row: dict[str, Any] | None = None
    job: Job | None = None
    error: Exception | None = None
    session = _Session()
    try:
        with _job_connection(session) as connection:
            row = guard.claim(connection)
            if row is None:
                return None
            job = _instantiate(row, decode=True)
            _work(job)
    except BaseException as failure:
        if row is None:  # the claim itself failed: no job to blame
            raise
        error = failure if isinstance(failure, Exception) else JobExited(failure)
    return _finish(
        job or registry.fallback()(cast(JobRow, row)),
        error,
        started,
        guard=guard,
        session=session,
    )


def _instantiate(row: Mapping[str, Any], *, decode: bool = False) -> Job:
    """The job a row describes, of the class its ``job_class`` names; ``decode``
    reads its JSON columns, fetched as text."""
    job_class = registry.resolve(row["job_class"])
    if decode:
        row = {**row, **{name: json.loads(row[name]) for name in JSON_COLUMNS}}
    return job_class(cast(JobRow, row))


def _work(job: Job) -> None:
    """Run the job and its resolve action, through the job middleware."""
    args, kwargs = job.attrs["args"], job.attrs["kwargs"]

    def work() -> None:
        job.run(*args, **kwargs)
        if job.resolution is None:
            job.default_resolve_action()

    try:
        if not run_through(config.job_middleware, (job,), work):
            raise Error("a job middleware did not call call_next(), so the job did not run")
    except BaseException:
        job.resolution = None  # whatever it resolved is rolled back
        raise


def _finish(
    job: Job,
    error: Exception | None,
    started: float,
    *,
    guard: Guard | None,
    session: _Session,
) -> JobResult:
    """Log a success, or handle a failure; ``connection`` is the one the job ran on."""
    elapsed = time.monotonic() - started
    if error is None:
        level = level_number(job.log_level(elapsed))
        if level is not None:
            log_event(
                level,
                "job_worked",
                job_id=job.id,
                job_class=job.attrs["job_class"],
                elapsed=round(elapsed, 6),
            )
        return JobResult(job, None, elapsed)
    _raise_if_connection_lost(error, session)
    _handle_error(job, error, guard)
    log_event(
        logging.ERROR,
        "job_errored",
        job_id=job.id,
        job_class=job.attrs["job_class"],
        error_count=job.error_count,
        error=error_message(error),
        elapsed=round(elapsed, 6),
    )
    return JobResult(job, error, elapsed)


@dataclass
class _Session:
    """Whether the connection a job's transaction ran on broke, noted before the
    checkout hands it back (a provider may close it then, broken or not)."""

    broke: bool = False


@contextmanager
def _job_connection(session: _Session) -> Iterator[Connection]:
    """A connection for one transaction of a job (see :func:`_job_transaction`)."""
    with db.checkout() as connection:
        try:
            with _job_transaction(connection):
                yield connection
        except BaseException:
            session.broke = connection.broken
            raise


def _raise_if_connection_lost(error: BaseException, session: _Session) -> None:
    """A job whose connection broke did not fail: nothing of it was recorded.

    Only que's own connection counts: an error of a connection the job opened
    itself (to another database, say) is the job's error.
    """
    if session.broke and db.connection_lost(error):
        raise ConnectionLost(f"the job's connection was lost: {error_message(error)}") from error


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


@contextmanager
def _error_transaction(job: Job, guard: Guard | None, session: _Session) -> Iterator[None]:
    """Where a failure is recorded: in the worker pool, a transaction that holds
    the worker's lock on the job again."""
    if job.id is None:  # sync mode: there is no row to record anything on
        yield
        return
    with _job_connection(session) as connection:
        if guard is not None and not guard.reclaim(connection):
            raise LockLost(job.id)
        yield


def _handle_error(job: Job, error: Exception, guard: Guard | None) -> None:
    """Let the job decide what its failure means, then notify if it asks to."""
    job.error = error
    errors: list[BaseException] = []
    session = _Session()
    try:
        with _error_transaction(job, guard, session):
            if job.handle_error(error):
                errors.append(error)
            if job.resolution is None:  # left as it was, the job would be ready again at once
                registry.fallback().handle_error(job, error)  # the default policy
    except LockLost as lost:
        _log_lock_lost(lost)
        errors = [error]
    except Exception as handler_error:
        _raise_if_connection_lost(handler_error, session)
        log_event(
            logging.ERROR, "handle_error_failed", job_id=job.id, error=error_message(handler_error)
        )
        errors = [handler_error, error]  # in Ruby Que's order
        job.resolution = None  # rolled back with the handler's transaction
        try:
            with _error_transaction(job, guard, _Session()):
                registry.fallback().handle_error(job, error)
        except LockLost as lost:
            _log_lock_lost(lost)
    for reported in errors:
        _notify(reported, job)


def _log_lock_lost(lost: LockLost) -> None:
    log_event(
        logging.WARNING,
        "job_lock_lost",
        job_ids=[lost.job_id],
        detail="another process took the job before its failure was recorded; "
        "the failure is not recorded",
    )


def _notify(error: BaseException, job: Job) -> None:
    notifier = config.error_notifier
    if notifier is None:
        return
    try:
        notifier(error, job.attrs)
    except Exception as notifier_error:
        log_event(
            logging.ERROR,
            "error_notifier_failed",
            job_id=job.id,
            error=error_message(notifier_error),
        )
