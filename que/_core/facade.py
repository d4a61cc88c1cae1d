"""``Que``: the one object users configure and call. It holds no logic of its own."""

from __future__ import annotations

import importlib
import logging
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from que._core import db, inline, migrations, sql
from que._core.config import ASYNC_MODE_PACKAGE, AsyncMode, Mode, config
from que._core.connection import Connection, ConnectionLike, ConnectionSource, adapt
from que._core.db import Params, Row
from que._core.enqueueing import BulkEnqueue, bulk_enqueue, enqueue_by_name
from que.errors import ConfigurationError
from que.job import Job
from que.types import (
    Clock,
    ErrorNotifier,
    JobMiddleware,
    JobOptions,
    LogFormatter,
    SQLMiddleware,
)

T = TypeVar("T")


class _Setting(Generic[T]):
    """A ``Que`` attribute that reads and writes the setting of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type | None = None) -> T:
        value: T = getattr(config, self._name)
        return value

    def __set__(self, instance: object, value: T) -> None:
        setattr(config, self._name, value)


def _async_mode() -> AsyncMode:
    """The in-process pool of async mode, which the worker package installs."""
    if config.async_mode is None:
        importlib.import_module(ASYNC_MODE_PACKAGE)
    if config.async_mode is None:
        raise ConfigurationError(
            f"Que.mode = 'async' needs the worker pool, but importing {ASYNC_MODE_PACKAGE} "
            "did not provide it"
        )
    return config.async_mode


class QueFacade:
    """Settings and operations of que; import the instance: ``from que import Que``."""

    default_queue: _Setting[str] = _Setting()
    """The queue of jobs whose class names none (``"default"``; ``None`` sets it back)."""
    error_notifier: _Setting[ErrorNotifier | None] = _Setting()
    """Called with ``(error, job_row)`` for each job error ``handle_error`` reports."""
    clock: _Setting[Clock] = _Setting()
    """The time que uses for jobs; the default returns ``None``: the database's ``now()``."""
    logger: _Setting[logging.Logger] = _Setting()
    """Where que's events go (the ``que`` logger), as JSON messages."""
    internal_logger: _Setting[logging.Logger] = _Setting()
    """Where the worker pool's internal events go (``que.internal``), at debug level."""
    log_formatter: _Setting[LogFormatter | None] = _Setting()
    """Turns an event into the logged line (``None``: JSON); returning ``None`` drops it."""
    job_module_prefixes: _Setting[tuple[str, ...]] = _Setting()
    """Modules a worker may import to find a job's class (each prefix and below)."""

    @property
    def connection(self) -> ConnectionSource:
        """Where jobs are enqueued and worked: a ``psycopg.Connection``, a
        ``psycopg_pool.ConnectionPool``, or a callable returning a context manager
        that yields a connection (``None`` unsets it)."""
        return config.connection

    @connection.setter
    def connection(self, target: ConnectionLike | ConnectionSource) -> None:
        config.connection = adapt(target)

    @property
    def mode(self) -> Mode:
        """``"off"``: only insert; ``"sync"``: run at enqueue; ``"async"``: work in-process."""
        return config.mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        previous = config.mode
        config.mode = mode
        try:
            if mode == "async":
                _async_mode().start()
            elif previous == "async":
                _async_mode().stop()
        except BaseException:
            config.mode = previous
            raise

    @property
    def job_middleware(self) -> list[JobMiddleware]:
        """``middleware(job, call_next)`` around every job run; the first added is outermost."""
        return config.job_middleware

    @property
    def sql_middleware(self) -> list[SQLMiddleware]:
        """``middleware(sql, params, call_next)`` around every statement que runs."""
        return config.sql_middleware

    # -- connections and SQL -----------------------------------------------------

    def checkout(self) -> AbstractContextManager[Connection]:
        """This thread's connection for the block; nested checkouts share it."""
        return db.checkout()

    def using(self, connection: Connection) -> AbstractContextManager[Connection]:
        """Make ``connection`` the one que uses in this thread for the block."""
        return config.connection.bind(connection)

    def transaction(self) -> AbstractContextManager[Connection]:
        """A transaction on this thread's connection (a savepoint when nested)."""
        return db.transaction()

    def execute(self, statement: str, params: Params = None) -> list[Row]:
        """Run SQL on this thread's connection; rows come back as dicts."""
        return db.execute(statement, params)

    # -- the schema ------------------------------------------------------------------

    def migrate(self, version: int = migrations.LATEST_VERSION) -> None:
        """Move the schema to ``version`` (0 removes it), in one transaction."""
        with db.checkout() as connection:
            migrations.migrate(connection, version)

    def db_version(self) -> int:
        """The schema version of the database (0: que is not installed)."""
        with db.checkout() as connection:
            return migrations.db_version(connection)

    # -- the queue -------------------------------------------------------------------

    def enqueue(self, *args: Any, job_options: JobOptions, **kwargs: Any) -> Job:
        """Enqueue a job by name: ``Que.enqueue(1, job_options={"job_class": "Name"})``."""
        return enqueue_by_name(*args, job_options=job_options, **kwargs)

    def bulk_enqueue(
        self, *, job_options: JobOptions | None = None, notify: bool = False
    ) -> AbstractContextManager[BulkEnqueue]:
        """Collect the jobs enqueued in the block and insert them together when it
        ends (one ``COPY``); if the block raises, nothing is inserted."""
        return bulk_enqueue(job_options=job_options, notify=notify)

    def work(
        self,
        *,
        queue: str | None = None,
        limit: int | None = None,
        recursive: bool = True,
        include_scheduled: bool = False,
        reraise: bool = False,
    ) -> inline.WorkSummary:
        """Run ready jobs in this thread, in (priority, run_at, id) order, until none is left.

        ``queue`` limits it to one queue; ``limit`` to that many jobs. With
        ``recursive=False`` only the jobs present at the start run, not the ones they
        enqueue. ``include_scheduled`` also runs jobs whose ``run_at`` is in the
        future. ``reraise`` raises a job's error (after it is recorded) instead of
        going on. Each job runs at most once per call.
        """
        return inline.work(
            queue=queue,
            limit=limit,
            recursive=recursive,
            include_scheduled=include_scheduled,
            reraise=reraise,
        )

    def jobs(self) -> list[Row]:
        """Every row of the queue table (finished and expired ones too), oldest first."""
        return db.execute(sql.ALL_JOBS)

    def clear(self) -> None:
        """Delete every job."""
        db.execute(sql.CLEAR_JOBS)

    def job_stats(self) -> list[Row]:
        """Per job class: count, count_working, count_errored, highest_error_count and
        oldest_run_at, for jobs not finished or expired."""
        return db.execute(sql.JOB_STATS)

    def job_states(self) -> list[Row]:
        """The jobs being worked right now, with the hostname and pid working each."""
        return db.execute(sql.JOB_STATES)


Que = QueFacade()
