"""Running SQL on the configured connection: checkouts, transactions, statements.

Every statement que sends goes through :func:`run`, so ``Que.sql_middleware``
sees them all. que never commits a transaction it did not open: a statement
joins whatever transaction the connection is in, so it commits when the caller
commits (a psycopg_pool checkout commits when it ends; an autocommit connection
commits each statement).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Any, TypeAlias

import psycopg
from psycopg import Cursor, Pipeline, errors, pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from que._core.config import config
from que._core.connection import Connection
from que._core.middleware import run_through
from que.errors import ConnectionLost, Error, SchemaError

Params: TypeAlias = Mapping[str, Any] | Sequence[Any] | None
Row: TypeAlias = dict[str, Any]


CONNECTION_DEFAULTS: Mapping[str, str | int] = {
    "connect_timeout": 10,  # seconds for one connection attempt
    # A server that stops answering (a partition, a dead host) is noticed in
    # bounded time, not after the kernel's two hours: keepalive probes start
    # after 10 s idle, and tcp_user_timeout ends the connection once data (probes
    # included) has gone unacknowledged for 30 s (on Linux, which then waits for
    # it rather than for keepalives_count probes).
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,  # milliseconds
}
"""libpq options the connections que opens itself (the locker's, and the ``que``
command's pool) get unless the connection string, or the libpq environment for
those that have a variable, sets them."""

_VARIABLES = {"connect_timeout": "PGCONNECT_TIMEOUT", "application_name": "PGAPPNAME"}
"""The libpq environment variables of the options que sets by default."""


def with_connection_defaults(conninfo: str, **defaults: str | int) -> str:
    """``conninfo`` plus :data:`CONNECTION_DEFAULTS` and ``defaults``, for each
    option neither it nor the environment sets already.

    Raises ``psycopg.ProgrammingError`` if ``conninfo`` cannot be parsed.
    """
    given = conninfo_to_dict(conninfo)

    def set_already(name: str) -> bool:
        variable = _VARIABLES.get(name)
        return name in given or (variable is not None and variable in os.environ)

    options = {**CONNECTION_DEFAULTS, **defaults}
    return make_conninfo(
        conninfo, **{name: value for name, value in options.items() if not set_already(name)}
    )


LOST_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03"})
"""Server states that end the session (admin or crash shutdown, cannot connect
now), besides class 08 (connection exception)."""


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` means the connection itself is gone, rather than that a
    statement failed: only then does que reconnect instead of blaming a job.

    psycopg raises such errors with no SQLSTATE (the client saw the socket
    fail), with class 08, or as one of the shutdown states above; a statement
    that was cancelled or timed out is an ``OperationalError`` too, but the
    connection lives on.
    """
    if isinstance(error, (ConnectionLost, psycopg.InterfaceError)):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in LOST_CONNECTION_STATES


def conninfo_of_connection() -> str:
    """The settings of a ``Que.connection`` connection, password included, less its
    ``application_name``: where the worker pool opens its lock connection by default.

    (Behind a pooler such as PgBouncer in transaction mode, give the pool a
    ``connection_url`` instead: advisory locks need a real session.)
    """
    with checkout() as connection:
        info = connection.info
        params = conninfo_to_dict(info.dsn)
        params.pop("application_name", None)  # the locker names itself
        if info.password:
            params["password"] = info.password
        return make_conninfo("", **params)


def checkout() -> AbstractContextManager[Connection]:
    """This thread's connection for the block (the same one when nested)."""
    return config.connection.checkout()


@contextmanager
def transaction() -> Iterator[Connection]:
    """A transaction on this thread's connection; a savepoint when nested."""
    with checkout() as connection, connection.transaction():
        yield connection


def run(connection: Connection, statement: str, params: Params = None) -> list[Row]:
    """Run one statement through the SQL middleware; return its rows as dicts."""
    rows: list[Row] = []

    def send() -> None:
        with connection.cursor(row_factory=dict_row) as cursor:
            cursor.execute(statement, params)
            rows.extend(_rows(cursor))

    _through_middleware(statement, params, send)
    return rows


def run_together(
    connection: Connection, statements: Sequence[tuple[str, Params]]
) -> list[list[Row]]:
    """Run statements in one round trip (psycopg's pipeline mode), each through
    the SQL middleware; return each one's rows. Each statement still sees what
    was committed before it began, including by the statements before it.
    (One after the other where the libpq in use has no pipeline mode.)"""
    if not Pipeline.is_supported():
        return [run(connection, statement, params) for statement, params in statements]
    cursors = [connection.cursor(row_factory=dict_row) for _ in statements]
    try:
        with connection.pipeline():
            for cursor, (statement, params) in zip(cursors, statements, strict=True):
                _through_middleware(statement, params, partial(cursor.execute, statement, params))
        return [_rows(cursor) for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def _rows(cursor: Cursor[Row]) -> list[Row]:
    result = cursor.pgresult  # (cheaper to ask than cursor.description)
    if result is None or result.status != pq.ExecStatus.TUPLES_OK:
        return []
    return cursor.fetchall()


def copy(connection: Connection, statement: str, rows: Iterable[Sequence[Any]]) -> None:
    """Stream ``rows`` into a ``COPY ... FROM STDIN`` statement, through the SQL
    middleware (which sees no params: the rows follow the statement)."""

    def send() -> None:
        with connection.cursor() as cursor, cursor.copy(statement) as stream:
            for row in rows:
                stream.write_row(row)

    _through_middleware(statement, None, send)


def _through_middleware(statement: str, params: Params, send: Callable[[], object]) -> None:
    try:
        sent = run_through(config.sql_middleware, (statement, params), send)
    except (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction) as error:
        schema_error = _schema_error(error)
        if schema_error is None:
            raise
        raise schema_error from error
    if not sent:
        raise Error(f"an SQL middleware did not call call_next(), so {statement!r} never ran")


# que's tables and functions, as PostgreSQL names them in its errors.
_QUE_OBJECT = re.compile(
    r"\bque_(jobs|lockers|values|validate_tags|job_notify|state_notify|determine_job_state)\b"
)


def _schema_error(error: psycopg.Error) -> SchemaError | None:
    """A statement met no que table, or an older one: say what to run instead
    (``None``: the error is about the caller's own SQL)."""
    problem = error.diag.message_primary or str(error)
    if not _QUE_OBJECT.search(problem):
        return None
    if isinstance(error, errors.UndefinedTable):
        return SchemaError(
            f"que's tables are missing ({problem}): create them with "
            "Que.migrate() (e.g. in a migration of your app)",
            version=0,
        )
    return SchemaError(
        f"the que schema is older than this que needs ({problem}): run Que.migrate()"
    )


def execute(statement: str, params: Params = None) -> list[Row]:
    """Run a statement on this thread's connection, in whatever transaction it is in."""
    with checkout() as connection:
        return run(connection, statement, params)
