"""Finding a PostgreSQL server for the test session and making its test database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from que import Que

DSN_ENVIRONMENT_VARIABLE = "QUE_TEST_DATABASE_URL"
DATABASE_NAME = "que_test"
PROBE_TIMEOUT = 3  # seconds to wait for a server before deciding there is none


@dataclass(frozen=True)
class Server:
    """Where the test database lives; ``dbname`` is the maintenance database."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str

    def conninfo(self, dbname: str | None = None) -> str:
        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname or self.dbname,
        )

    def reachable(self) -> bool:
        try:
            psycopg.connect(self.conninfo(), connect_timeout=PROBE_TIMEOUT).close()
        except psycopg.OperationalError:
            return False
        return True


def configured_dsn(config: pytest.Config) -> str | None:
    """``--que-dsn``, else the ``que_dsn`` ini setting, else ``$QUE_TEST_DATABASE_URL``."""
    dsn = config.getoption("que_dsn") or config.getini("que_dsn")
    return str(dsn) if dsn else os.environ.get(DSN_ENVIRONMENT_VARIABLE) or None


def find_server(request: pytest.FixtureRequest) -> Server:
    """The server named by que's options, or one pytest-postgresql can reach or start."""
    dsn = configured_dsn(request.config)
    if dsn is not None:
        return _server_from_dsn(dsn)
    from pytest_postgresql.config import get_config

    settings = get_config(request)
    server = Server(
        host=_option(request, "host", "PGHOST", settings.host) or "localhost",
        port=int(_option(request, "port", "PGPORT", settings.port) or 5432),
        user=_option(request, "user", "PGUSER", settings.user) or "postgres",
        password=_option(request, "password", "PGPASSWORD", settings.password),
        dbname=settings.maintenance_dbname,
    )
    if server.reachable():
        return server
    try:
        process = request.getfixturevalue("postgresql_proc")
    except Exception as error:
        pytest.exit(
            f"que_testing found no PostgreSQL server at {server.host}:{server.port} "
            f"and could not start one ({error}). Point it at a server with --que-dsn, "
            f"the que_dsn ini setting or ${DSN_ENVIRONMENT_VARIABLE}, e.g. "
            "postgresql://postgres@localhost:5432/postgres",
            returncode=4,
        )
    return replace(
        server,
        host=process.host,
        port=process.port,
        user=process.user,
        password=process.password or None,
    )


def _server_from_dsn(dsn: str) -> Server:
    params = conninfo_to_dict(dsn)
    return Server(
        host=str(params.get("host") or os.environ.get("PGHOST") or "localhost"),
        port=int(params.get("port") or os.environ.get("PGPORT") or 5432),
        user=str(params.get("user") or os.environ.get("PGUSER") or "postgres"),
        password=str(params["password"]) if params.get("password") else None,
        dbname=str(params.get("dbname") or "postgres"),
    )


def _option(request: pytest.FixtureRequest, name: str, env: str, default: object) -> str | None:
    """A pytest-postgresql command-line option, else a libpq variable, else its ini value."""
    value = request.config.getoption(f"postgresql_{name}") or os.environ.get(env) or default
    return str(value) if value else None


def database_name() -> str:
    """A test database per test process: per pytest-xdist worker, and per nested run."""
    return f"{DATABASE_NAME}_{os.getpid()}"


@contextmanager
def migrated_database(server: Server) -> Iterator[str]:
    """Create a fresh test database with que's schema; drop it afterwards."""
    from pytest_postgresql.janitor import DatabaseJanitor

    janitor = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        password=server.password,
        dbname=database_name(),
        maintenance_dbname=server.dbname,
    )
    janitor.drop()
    with janitor:
        conninfo = server.conninfo(database_name())
        with psycopg.connect(conninfo) as connection, Que.using(connection):
            Que.migrate()
        yield conninfo
