"""Where que gets its database connection: adapters for what users already have.

``Que.connection`` accepts a psycopg ``Connection``, a ``psycopg_pool.ConnectionPool``
or any callable returning a context manager that yields a psycopg connection. Each
is wrapped in a :class:`ConnectionSource`, which makes checkouts reentrant per
thread: nested checkouts in one thread get the same connection, so a job enqueued
inside ``Que.transaction()`` joins that transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeAlias

import psycopg
from psycopg_pool import ConnectionPool

from que.errors import ConfigurationError, ConfigurationTypeError

Connection: TypeAlias = psycopg.Connection[Any]
ConnectionProvider: TypeAlias = Callable[[], AbstractContextManager[Connection]]
"""A callable returning a context manager that lends a connection for its block."""

ConnectionLike: TypeAlias = "Connection | ConnectionPool[Any] | ConnectionProvider | None"


class ConnectionSource:
    """Lends connections to que, reentrant and exclusive per thread."""

    def __init__(self, provider: ConnectionProvider, *, description: str) -> None:
        self._provider = provider
        self._local = threading.local()
        self.description = description

    @contextmanager
    def checkout(self) -> Iterator[Connection]:
        """Lend this thread's current connection, or take one for the block."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            yield current
            return
        with self._provider() as connection:
            if not isinstance(connection, psycopg.Connection):
                raise ConfigurationTypeError(
                    f"the connection provider {self.description} lent {connection!r}; "
                    "it must lend a psycopg.Connection"
                )
            with self.bind(connection):
                yield connection

    @contextmanager
    def bind(self, connection: Connection) -> Iterator[Connection]:
        """Make ``connection`` this thread's connection for the block."""
        previous = getattr(self._local, "connection", None)
        self._local.connection = connection
        try:
            yield connection
        finally:
            self._local.connection = previous


def _single_connection(connection: Connection) -> ConnectionProvider:
    """Share one connection between threads, one thread at a time."""
    lock = threading.RLock()

    @contextmanager
    def lend() -> Iterator[Connection]:
        with lock:
            yield connection

    return lend


def adapt(target: object) -> ConnectionSource:
    """Wrap whatever the user assigned to ``Que.connection``."""
    if target is None:
        return UNCONFIGURED
    if isinstance(target, ConnectionSource):
        return target
    if isinstance(target, psycopg.Connection):
        return ConnectionSource(_single_connection(target), description=repr(target))
    if isinstance(target, ConnectionPool):
        return ConnectionSource(target.connection, description=repr(target))
    if callable(target):
        return ConnectionSource(target, description=repr(target))
    raise ConfigurationTypeError(
        f"Que.connection cannot use {target!r}: give it a psycopg.Connection, a "
        "psycopg_pool.ConnectionPool, or a callable returning a context manager "
        "that yields a psycopg.Connection"
    )


def _unconfigured() -> AbstractContextManager[Connection]:
    raise ConfigurationError(
        "que has no database connection: set Que.connection to a psycopg "
        "Connection, a psycopg_pool.ConnectionPool, or a callable context manager "
        "yielding a connection (for example Que.connection = ConnectionPool(dsn))"
    )


UNCONFIGURED = ConnectionSource(_unconfigured, description="(none)")
