"""The ``que`` process: start up, work until signalled, stop safely, exit with a code.

:func:`que.cli.main` calls :func:`command` once its signal handlers are in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from psycopg_pool import ConnectionPool

from que import Que
from que._core import db
from que._core.config import config
from que._core.connection import UNCONFIGURED
from que._core.log import log_event
from que._core.redact import redact_passwords
from que.cli._options import Options, UsageError, parse_args
from que.cli._signals import HARD_STOP_EXIT_CODE, StopRequested, StopSignals
from que.cli._startup import (
    banner,
    check_database,
    configure_logging,
    describe_database,
    import_modules,
    one_line,
    open_worker_connections,
)
from que.worker import WorkerPool

TITLE_INTERVAL = 1.0  # seconds between process title updates
FAILURE_EXIT_CODE = 70  # EX_SOFTWARE: a bug stopped the worker pool (see the log)


class _ProcessTitle:
    """The process title (``ps``, ``top``) shows what the worker process is doing."""

    def __init__(self) -> None:
        try:
            module = importlib.import_module("setproctitle")
        except ImportError:
            self._set = None
        else:
            self._set = module.setproctitle
        self._last = ""

    def show(self, pool: WorkerPool) -> None:
        if self._set is None:
            return
        status = pool.status()
        title = (
            f"que: {status.state} {','.join(status.queues)} "
            f"({status.busy}/{status.workers} busy, {status.buffered} buffered)"
        )
        if title != self._last:
            self._last = title
            self._set(title)


def _hard_exit(reason: str, pidfile: str | None, **fields: Any) -> NoReturn:
    """Exit now without running anything else: open transactions roll back in Postgres."""
    log_event(logging.ERROR, "hard_stop", reason=reason, **fields)
    _remove_pidfile(pidfile)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(HARD_STOP_EXIT_CODE)


def _write_pidfile(path: str | None) -> None:
    if path is None:
        return
    try:
        Path(path).write_text(f"{os.getpid()}\n")
    except OSError as error:
        raise UsageError(f"cannot write the pidfile {path!r}: {one_line(error)}") from None


def _remove_pidfile(path: str | None) -> None:
    if path is None:
        return
    try:
        if Path(path).read_text().strip() == str(os.getpid()):
            Path(path).unlink()
    except OSError:
        pass


def run(options: Options, signals: StopSignals) -> int:
    """Import, connect, work until signalled, stop safely. Returns the exit code.

    A stop signal before the pool has started ends the start-up between its
    steps, with exit code 0.
    """
    handler = configure_logging(options.log_level, options.log_internals)
    signals.hard_exit = lambda reason: _hard_exit(reason, options.pidfile)
    worker_connections: ConnectionPool[Any] | None = None
    try:
        signals.check()
        import_modules(options.modules)
        signals.check()
        database_url = options.connection_url or os.environ.get("DATABASE_URL") or ""
        if config.connection is UNCONFIGURED:
            lock_conninfo = database_url
            check_database(lock_conninfo)
            worker_connections = open_worker_connections(
                database_url, options.settings.worker_count + 1
            )
            Que.connection = worker_connections
        elif options.connection_url:
            lock_conninfo = options.connection_url
            check_database(lock_conninfo)
        else:
            try:
                lock_conninfo = db.conninfo_of_connection()
            except Exception as error:
                raise UsageError(
                    f"cannot use the Que.connection your modules set: {one_line(error)}"
                ) from None
            check_database(lock_conninfo)
        signals.check()
        settings = dataclasses.replace(options.settings, connection_url=lock_conninfo)
        pool = WorkerPool(settings)
        _write_pidfile(options.pidfile)
        try:
            return _work(pool, options, lock_conninfo, signals)
        finally:
            _remove_pidfile(options.pidfile)
    except StopRequested:
        log_event(logging.INFO, "signal_received", signal=signals.received, during="start-up")
        return 0
    finally:
        if worker_connections is not None:
            Que.connection = None
            worker_connections.close()
        config.logger.removeHandler(handler)
        config.internal_logger.removeHandler(handler)


def _work(pool: WorkerPool, options: Options, lock_conninfo: str, signals: StopSignals) -> int:
    signals.hard_exit = lambda reason: _hard_exit(
        reason, options.pidfile, running_job_ids=pool.running_job_ids()
    )
    try:
        pool.start()
    except Exception as error:
        raise UsageError(
            f"cannot start the lock connection ({describe_database(lock_conninfo)}): "
            f"{one_line(error)}"
        ) from None
    print(banner(options, pool, lock_conninfo), file=sys.stderr, flush=True)
    title = _ProcessTitle()
    title.show(pool)
    while pool.running and not signals.requested.wait(TITLE_INTERVAL):
        title.show(pool)
    if signals.received:
        log_event(logging.INFO, "signal_received", signal=signals.received)
    pool.request_stop()
    timeout = options.shutdown_timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        title.show(pool)
        wait = (
            TITLE_INTERVAL if deadline is None else min(TITLE_INTERVAL, deadline - time.monotonic())
        )
        if pool.join(max(0.0, wait)):
            return 0 if pool.failure is None else FAILURE_EXIT_CODE
        if deadline is not None and time.monotonic() >= deadline:
            _hard_exit(
                "shutdown timeout",
                options.pidfile,
                timeout=timeout,
                running_job_ids=pool.running_job_ids(),
            )


def command(argv: Sequence[str], signals: StopSignals) -> int:
    """Run ``que`` with the arguments ``argv``; returns the exit code."""
    try:
        options = parse_args(argv)
        return run(options, signals)
    except UsageError as error:
        given = [*argv, os.environ.get("DATABASE_URL")]
        print(f"que: {redact_passwords(str(error), given)}", file=sys.stderr)
        return 1
    except SystemExit as exit:  # --help, --version
        return exit.code if isinstance(exit.code, int) else 0
