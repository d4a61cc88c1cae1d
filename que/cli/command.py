"""The ``que`` command's work: parse the options, import, connect, run the pool, stop.

:func:`que.cli.main` calls :func:`command` once its signal handlers are in place.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from que import Que, __version__
from que._core import db, migrations
from que._core.config import config
from que._core.connection import UNCONFIGURED
from que._core.log import LEVELS, log_event
from que._core.redact import redact_passwords
from que._core.schema import MAXIMUM_QUEUE_LENGTH, queue_name_problem
from que.cli.signals import HARD_STOP_EXIT_CODE, StopRequested, StopSignals
from que.errors import SchemaError
from que.worker._clock import monotonic
from que.worker._pool import WorkerPool, lock_conninfo_from_connection
from que.worker.settings import (
    ANY_PRIORITY,
    MAXIMUM_BUFFER_SIZE,
    MINIMUM_BUFFER_SIZE,
    MOST_IMPORTANT_PRIORITY,
    POLL_INTERVAL,
    PoolSettings,
    describe_threshold,
    worker_priorities,
)

CONNECT_TIMEOUT = 10  # seconds to open the workers' first connection at start-up
TITLE_INTERVAL = 1.0  # seconds between process title updates
WORKER_APPLICATION_NAME = "que-worker"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
FAILURE_EXIT_CODE = 70  # EX_SOFTWARE: a bug stopped the worker pool (see the log)


class UsageError(Exception):
    """Something the user must fix; shown as one line on stderr, exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see que --help)")


# -- option values ---------------------------------------------------------------------


def _positive_number(unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, not {text!r}")
        return value

    return parse


_seconds = _positive_number("seconds")
_milliseconds = _positive_number("milliseconds")


def _whole_number(minimum: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of {what} >= {minimum}, not {text!r}"
            )
        return value

    return parse


def _priorities(text: str) -> list[int | None]:
    thresholds: list[int | None] = []
    for item in text.split(","):
        item = item.strip()
        if item.lower() == "any":
            thresholds.append(None)
            continue
        try:
            value = int(item)
        except ValueError:
            value = ANY_PRIORITY + 1
        if not MOST_IMPORTANT_PRIORITY <= value <= ANY_PRIORITY:
            raise argparse.ArgumentTypeError(
                f"{item!r} in {text!r} is not a priority: give whole numbers from "
                f"{MOST_IMPORTANT_PRIORITY} to {ANY_PRIORITY} or 'any', separated by commas"
            )
        thresholds.append(value)
    return thresholds


def _queue(text: str) -> tuple[str, float | None]:
    name, equals, interval = text.rpartition("=") if "=" in text else (text, "", "")
    if queue_name_problem(name) is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a queue: give NAME or NAME=SECONDS, the name 1 to "
            f"{MAXIMUM_QUEUE_LENGTH} characters"
        )
    if not equals:
        return name, None
    try:
        return name, _seconds(interval)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"the poll interval in {text!r} must be a positive number of seconds"
        ) from None


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in {"true", "yes", "on", "1"}:
        return True
    if value in {"false", "no", "off", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, not {text!r}")


def _level(text: str) -> str:
    value = text.strip().lower()
    if value not in LEVELS:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(LOG_LEVELS)}, not {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="que",
        usage="que [options] [module ...]",
        description="Work the jobs of a que queue (PostgreSQL). Each MODULE (a module "
        "name or a .py file) is imported first, so that its job classes are known.",
        epilog="Database: --connection-url, else $DATABASE_URL, else the libpq "
        "environment (PGHOST, PGDATABASE, ...). Logs are JSON lines on stdout. "
        "SIGINT/SIGTERM: stop taking jobs, release buffered ones, let running jobs "
        "finish, exit 0; a second signal exits at once (running jobs roll back).",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("modules", nargs="*", metavar="module",
        help="module name or .py file defining job classes")
    add("-i", "--poll-interval", type=_seconds, default=POLL_INTERVAL, metavar="SECONDS",
        help="maximum interval between polls of a queue for ready jobs "
             f"(default: {POLL_INTERVAL:g})")
    add("-l", "--log-level", type=_level, default="info", metavar="LEVEL",
        help=f"log at this level and above to stdout: {', '.join(LOG_LEVELS)} "
             "(default: info)")
    add("-p", "--worker-priorities", type=_priorities, metavar="LIST",
        help="one worker per entry, taking jobs up to that priority; 'any' takes every "
             "job (default: 10,30,50,any,any,any)")
    add("-q", "--queue-name", type=_queue, action="append", dest="queues",
        metavar="NAME[=SECONDS]",
        help="work jobs of this queue, polled every SECONDS (default: --poll-interval); "
             "repeat for more queues (default: the default queue only)")
    add("-w", "--worker-count", type=_whole_number(1, "workers"), metavar="COUNT",
        help="number of worker threads: pads or trims --worker-priorities with 'any' "
             "(default: 6)")
    add("-v", "--version", action="version", version=f"que {__version__}",
        help="print que's version and exit")
    add("--connection-url", metavar="URL",
        help="database to connect to (default: $DATABASE_URL, else the libpq "
             "environment); must reach PostgreSQL directly, not through PgBouncer "
             "in transaction mode, as it holds the advisory locks")
    add("--log-internals", action="store_true",
        help="also log the worker pool's internal events (polls, notifications, "
             "locks); verbose, for debugging")
    add("--maximum-buffer-size", type=_whole_number(0, "jobs"), default=MAXIMUM_BUFFER_SIZE,
        metavar="SIZE",
        help="jobs to lock and hold in this process awaiting a worker "
             f"(default: {MAXIMUM_BUFFER_SIZE})")
    add("--minimum-buffer-size", type=_whole_number(0, "jobs"), default=MINIMUM_BUFFER_SIZE,
        metavar="SIZE", help="accepted for compatibility with Que; not used")
    add("--wait-period", type=_milliseconds, default=50.0, metavar="MILLISECONDS",
        help="longest wait between checks of finished jobs, notifications and polls "
             "(default: 50)")
    add("--listen", type=_boolean, nargs="?", const=True, default=True, metavar="BOOL",
        help="take new jobs as LISTEN/NOTIFY announces them (default: true); false: "
             "only poll")
    add("--pidfile", metavar="PATH", help="write the process id to PATH while running")
    add("--shutdown-timeout", type=_seconds, metavar="SECONDS",
        help="after SIGINT/SIGTERM, wait at most this long for running jobs, then exit "
             "with code 1 without committing them (default: wait for them)")
    return parser


@dataclass
class Options:
    """What the command line asked for."""

    settings: PoolSettings
    modules: list[str] = field(default_factory=list)
    log_level: str = "info"
    log_internals: bool = False
    connection_url: str | None = None
    pidfile: str | None = None
    shutdown_timeout: float | None = None


def parse_args(argv: Sequence[str]) -> Options:
    """Options from the command line; ``UsageError`` for bad values.

    ``-h`` and ``-v`` raise ``SystemExit(0)`` after printing.
    """
    args = build_parser().parse_intermixed_args(list(argv))
    queues: dict[str, float | None] = {}
    for name, interval in args.queues or []:
        if name in queues:
            raise UsageError(
                f"argument -q/--queue-name: queue {name!r} is given twice (see que --help)"
            )
        queues[name] = interval
    try:
        settings = PoolSettings(
            worker_priorities=worker_priorities(args.worker_priorities, args.worker_count),
            queues=queues,
            poll_interval=args.poll_interval,
            maximum_buffer_size=args.maximum_buffer_size,
            minimum_buffer_size=args.minimum_buffer_size,
            wait_period=args.wait_period / 1000,
            listen=args.listen,
        )
    except ValueError as error:
        raise UsageError(f"{error} (see que --help)") from None
    return Options(
        settings=settings, modules=args.modules, log_level=args.log_level,
        log_internals=args.log_internals, connection_url=args.connection_url,
        pidfile=args.pidfile, shutdown_timeout=args.shutdown_timeout,
    )


# -- start-up --------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def import_modules(names: Sequence[str]) -> None:
    """Import each module name or .py file, the current directory first on sys.path."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            if name.endswith(".py") or os.sep in name:
                _import_file(Path(name))
            else:
                importlib.import_module(name)
        except (Exception, SystemExit) as error:
            raise UsageError(
                f"cannot import {name!r}: {_one_line(error)} "
                f"(run python -c 'import ...' for the traceback)"
            ) from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    directory = str(path.resolve().parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{str(path)!r} is not an importable Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise


def describe_database(conninfo: str) -> str:
    """Where a connection string points, without its password."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "(unreadable connection string)"
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER") or ""
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or "default database"
    return f"{dbname} on {host}:{port}" + (f" as {user}" if user else "")


def check_database(conninfo: str) -> None:
    """Connect once and check que's schema: ``UsageError`` with the reason otherwise."""
    where = describe_database(conninfo)
    try:
        with psycopg.connect(db.with_connection_defaults(conninfo),
                             autocommit=True) as connection:
            migrations.require_latest(connection, where)
    except psycopg.Error as error:
        raise UsageError(f"cannot connect to the database ({where}): {_one_line(error)}") from None
    except SchemaError as error:
        raise UsageError(str(error)) from None


def open_worker_connections(conninfo: str, size: int) -> ConnectionPool[Any]:
    """The pool the workers run jobs on, when no imported module set ``Que.connection``."""
    # No check on checkout: it would cost every job a round trip. A connection
    # found broken fails that job's attempt, which is logged and retried, and
    # the pool replaces it.
    pool: ConnectionPool[Any] = ConnectionPool(
        db.with_connection_defaults(conninfo, application_name=WORKER_APPLICATION_NAME),
        min_size=1, max_size=size, open=False, name="que-workers",
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except PoolTimeout as error:
        pool.close()
        raise UsageError(
            f"cannot open connections for the workers ({describe_database(conninfo)}): "
            f"{_one_line(error)}"
        ) from None
    return pool


def configure_logging(level: str, internals: bool) -> logging.Handler:
    """JSON lines on stdout: the message is the JSON que formats."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    config.logger.addHandler(handler)
    config.logger.setLevel(LEVELS[level])
    internal = config.internal_logger
    internal.setLevel(logging.DEBUG if internals else max(LEVELS[level], logging.INFO))
    if not internal.name.startswith(f"{config.logger.name}."):
        internal.addHandler(handler)
    return handler


def banner(options: Options, pool: WorkerPool, lock_conninfo: str) -> str:
    settings = options.settings
    priorities = ", ".join(describe_threshold(t) for t in settings.worker_priorities)
    queues = ", ".join(f"{name} (poll every {interval:g}s)"
                       for name, interval in pool.queues.items())
    listening = (f"yes, checking every {settings.wait_period * 1000:g} ms"
                 if settings.listen else "no (polling only)")
    return "\n".join([
        f"que {__version__}: worker process {os.getpid()}",
        f"  database:  {describe_database(lock_conninfo)}",
        f"  workers:   {settings.worker_count} (priorities: {priorities})",
        f"  buffer:    up to {settings.maximum_buffer_size} jobs, "
        f"refilled below {settings.minimum_buffer_size}",
        f"  queues:    {queues}",
        f"  listening: {listening}",
        "Stop with SIGINT or SIGTERM: buffered jobs are released, running jobs finish.",
    ])


# -- running ---------------------------------------------------------------------------


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
        title = (f"que: {status.state} {','.join(status.queues)} "
                 f"({status.busy}/{status.workers} busy, {status.buffered} buffered)")
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
        raise UsageError(f"cannot write the pidfile {path!r}: {_one_line(error)}") from None


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
                lock_conninfo = lock_conninfo_from_connection()
            except Exception as error:
                raise UsageError(
                    f"cannot use the Que.connection your modules set: {_one_line(error)}"
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
        log_event(logging.INFO, "signal_received", signal=signals.received,
                  during="start-up")
        return 0
    finally:
        if worker_connections is not None:
            Que.connection = None
            worker_connections.close()
        config.logger.removeHandler(handler)
        config.internal_logger.removeHandler(handler)


def _work(pool: WorkerPool, options: Options, lock_conninfo: str,
          signals: StopSignals) -> int:
    signals.hard_exit = lambda reason: _hard_exit(reason, options.pidfile,
                                                  running_job_ids=pool.running_job_ids())
    try:
        pool.start()
    except Exception as error:
        raise UsageError(
            f"cannot start the lock connection ({describe_database(lock_conninfo)}): "
            f"{_one_line(error)}"
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
    deadline = None if timeout is None else monotonic() + timeout
    while True:
        title.show(pool)
        wait = TITLE_INTERVAL if deadline is None else min(TITLE_INTERVAL,
                                                            deadline - monotonic())
        if pool.join(max(0.0, wait)):
            return 0 if pool.failure is None else FAILURE_EXIT_CODE
        if deadline is not None and monotonic() >= deadline:
            _hard_exit("shutdown timeout", options.pidfile, timeout=timeout,
                       running_job_ids=pool.running_job_ids())


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
