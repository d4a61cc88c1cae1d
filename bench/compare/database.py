"""The PostgreSQL server the comparison runs on, and a fresh database per measurement.

Every measurement gets a database of its own, created from ``template0`` and
dropped afterwards, so no system inherits another's tables, bloat, statistics
or leftover locks, and each installs its schema its own way into an empty one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = "que_bench_"
SHOWN_SETTINGS = (
    "shared_buffers",
    "synchronous_commit",
    "fsync",
    "max_connections",
    "max_locks_per_transaction",
)


def connect(dsn: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A plain connection; autocommit, so a block is a transaction only when asked for."""
    return psycopg.connect(dsn, autocommit=autocommit)


@dataclass(frozen=True)
class Server:
    """Where the databases are created: ``conninfo`` names a maintenance database."""

    conninfo: str = DEFAULT_SERVER

    def dsn(self, database: str) -> str:
        return make_conninfo(self.conninfo, dbname=database)

    def describe(self) -> str:
        """One line: the server version and the settings that move the numbers."""
        with connect(self.conninfo) as connection:
            shown = [
                (name, connection.execute("SELECT current_setting(%s)", [name]).fetchone())
                for name in ("server_version", *SHOWN_SETTINGS)
            ]
        values = {name: row[0] if row else "?" for name, row in shown}
        version = values.pop("server_version")
        return f"PostgreSQL {version} ({', '.join(f'{k}={v}' for k, v in values.items())})"

    @contextmanager
    def fresh_database(self, system: str) -> Iterator[str]:
        """Create ``que_bench_<system>`` (dropping a leftover first); yield its DSN; drop it."""
        name = DATABASE_PREFIX + re.sub(r"\W", "_", system)
        self._drop(name)
        with connect(self.conninfo) as connection:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            )
        try:
            yield self.dsn(name)
        finally:
            self._drop(name)

    def _drop(self, name: str) -> None:
        # FORCE ends sessions a killed worker may have left behind.
        with connect(self.conninfo) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
