"""The que pytest plugin: options, markers, and the fixtures it registers."""

from __future__ import annotations

import pytest

from que_testing.fixtures import (  # noqa: F401 (fixtures are found by name)
    _que_connection,
    _que_marker,
    _que_pool,
    que_committed_db,
    que_database_url,
    que_db,
    que_jobs,
    que_sync,
    que_time,
    que_worker,
    que_worker_settings,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("que", "que job queue testing")
    help_text = (
        "PostgreSQL server for que's test database, as a libpq URL or conninfo "
        "(default: $QUE_TEST_DATABASE_URL, else pytest-postgresql's settings)"
    )
    group.addoption("--que-dsn", dest="que_dsn", default=None, help=help_text)
    parser.addini("que_dsn", help=help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "que(mode='sync'): run the test with Que.mode set to 'sync'")
