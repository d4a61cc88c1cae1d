"""Start-up of the ``que`` command: import the job modules, check the database,
open the workers' connections, set up logging, print the banner."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from que import __version__
from que._core import db, migrations
from que._core.config import config
from que._core.log import LEVELS
from que.cli._options import Options, UsageError
from que.errors import SchemaError
from que.worker import WorkerPool
from que.worker.settings import (
    describe_threshold,
)

CONNECT_TIMEOUT = 10  # seconds to open the workers' first connection at start-up
WORKER_APPLICATION_NAME = "que-worker"


def one_line(error: BaseException) -> str:
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
                f"cannot import {name!r}: {one_line(error)} "
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
        return "an unreadable connection string"
    host = params.get("host") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER") or ""
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user or "default database"
    return f"{dbname} on {host}:{port}" + (f" as {user}" if user else "")


def check_database(conninfo: str) -> None:
    """Connect once and check que's schema: ``UsageError`` with the reason otherwise."""
    where = describe_database(conninfo)
    try:
        with psycopg.connect(db.with_connection_defaults(conninfo), autocommit=True) as connection:
            migrations.require_latest(connection, where)
    except psycopg.Error as error:
        raise UsageError(f"cannot connect to the database ({where}): {one_line(error)}") from None
    except SchemaError as error:
        raise UsageError(str(error)) from None


def open_worker_connections(conninfo: str, size: int) -> ConnectionPool[Any]:
    """The pool the workers run jobs on, when no imported module set ``Que.connection``."""
    # No check on checkout: it would cost every job a round trip. A connection
    # found broken fails that job's attempt, which is logged and retried, and
    # the pool replaces it.
    pool: ConnectionPool[Any] = ConnectionPool(
        db.with_connection_defaults(conninfo, application_name=WORKER_APPLICATION_NAME),
        min_size=1,
        max_size=size,
        open=False,
        name="que-workers",
    )
    try:
        pool.open(wait=True, timeout=CONNECT_TIMEOUT)
    except PoolTimeout as error:
        pool.close()
        raise UsageError(
            f"cannot open connections for the workers ({describe_database(conninfo)}): "
            f"{one_line(error)}"
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
    queues = ", ".join(
        f"{name} (poll every {interval:g}s)" for name, interval in pool.queues.items()
    )
    listening = (
        f"yes, checking every {settings.wait_period * 1000:g} ms"
        if settings.listen
        else "no (polling only)"
    )
    return "\n".join(
        [
            f"que {__version__}: worker process {os.getpid()}",
            f"  database:  {describe_database(lock_conninfo)}",
            f"  workers:   {settings.worker_count} (priorities: {priorities})",
            f"  buffer:    up to {settings.maximum_buffer_size} jobs, "
            f"refilled below {settings.minimum_buffer_size}",
            f"  queues:    {queues}",
            f"  listening: {listening}",
            "Stop with SIGINT or SIGTERM: buffered jobs are released, running jobs finish.",
        ]
    )
