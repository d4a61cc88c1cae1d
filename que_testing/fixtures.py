"""The fixtures of the que pytest plugin.

Two ways to isolate tests: ``que_db`` runs the test inside a transaction that
is rolled back (fast; the default behind ``que_jobs``), ``que_committed_db``
lets data commit through a connection pool and deletes the jobs afterwards
(for worker pools and LISTEN/NOTIFY, which need other connections).

pytest loads this module for every test run of every project that installs
que, so it imports nothing heavy itself: each fixture imports what it needs
(psycopg, the worker pool, freezegun) when a test first asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

import que

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

    from que.worker import PoolSettings
    from que_testing.assertions import JobsAssertions
    from que_testing.timetravel import TimeTravel
    from que_testing.worker import BackgroundWorker

COMMITTED_POOL_SIZE = 10  # connections; a worker pool of 6 plus the test's own
STOP_TIMEOUT = 30.0  # seconds for que_worker's running jobs to finish after the test


@contextmanager
def que_settings(**settings: Any) -> Iterator[None]:
    """Set ``Que`` attributes for the block, then put the old values back."""
    previous = {name: getattr(que.Que, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(que.Que, name, value)
        yield
    finally:
        for name, value in previous.items():
            setattr(que.Que, name, value)


@pytest.fixture(scope="session")
def que_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The connection string of this session's test database, migrated to que's schema."""
    from que_testing import _database

    with _database.migrated_database(_database.find_server(request)) as conninfo:
        yield conninfo


@pytest.fixture(scope="session")
def _que_connection(que_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    import psycopg

    with psycopg.connect(que_database_url) as connection:
        yield connection


@pytest.fixture
def que_db(_que_connection: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A connection inside a transaction rolled back after the test; que uses it meanwhile."""
    from que_testing.timetravel import wall_clock

    if _que_connection.closed:
        pytest.fail("the que test connection was closed by an earlier test")
    with (
        que_settings(connection=_que_connection, clock=wall_clock),
        _que_connection.transaction(force_rollback=True),
    ):
        yield _que_connection


@pytest.fixture(scope="session")
def _que_pool(que_database_url: str) -> Iterator[ConnectionPool[Any]]:
    from psycopg_pool import ConnectionPool

    with ConnectionPool(
        que_database_url, min_size=1, max_size=COMMITTED_POOL_SIZE, open=True, name="que_testing"
    ) as pool:
        yield pool


@pytest.fixture
def que_committed_db(_que_pool: ConnectionPool[Any]) -> Iterator[ConnectionPool[Any]]:
    """A connection pool whose writes commit, for tests that need other connections.

    que uses the pool during the test; afterwards every job is deleted. Time is
    the database's, as in production, so the notify trigger sees jobs as ready.
    """
    with que_settings(connection=_que_pool):
        try:
            yield _que_pool
        finally:
            que.Que.clear()


@pytest.fixture
def que_jobs(request: pytest.FixtureRequest) -> JobsAssertions:
    """The enqueued jobs, with assertions and an inline runner.

    Uses ``que_committed_db`` when the test asks for it, else ``que_db``.
    """
    from que_testing.assertions import JobsAssertions

    committed = "que_committed_db" in request.fixturenames
    request.getfixturevalue("que_committed_db" if committed else "que_db")
    return JobsAssertions()


@pytest.fixture
def que_sync() -> Iterator[None]:
    """``Que.mode = "sync"`` for the test: jobs run inline when enqueued."""
    with que_settings(mode="sync"):
        yield


@pytest.fixture
def que_time() -> Iterator[TimeTravel]:
    """Frozen time that que's clock follows; ``advance()`` it to make jobs ready."""
    from que_testing.timetravel import TimeTravel, wall_clock

    travel = TimeTravel().start()
    with que_settings(clock=wall_clock):
        try:
            yield travel
        finally:
            travel.stop()


@pytest.fixture
def que_worker_settings() -> PoolSettings:
    """How ``que_worker`` sets up its pool; override this fixture to change it."""
    from que_testing.worker import TEST_POOL_SETTINGS

    return TEST_POOL_SETTINGS


@pytest.fixture
def que_worker(
    que_committed_db: ConnectionPool[Any], que_worker_settings: PoolSettings
) -> Iterator[BackgroundWorker]:
    """A worker pool working committed jobs in the background; stopped after the test."""
    from que.worker import WorkerPool
    from que_testing.worker import BackgroundWorker

    pool = WorkerPool(que_worker_settings).start()
    try:
        yield BackgroundWorker(pool)
    finally:
        if not pool.stop(timeout=STOP_TIMEOUT):
            pytest.fail(
                f"the que worker pool did not stop within {STOP_TIMEOUT} s: "
                f"jobs {pool.running_job_ids()} were still running"
            )


@pytest.fixture(autouse=True)
def _que_marker(request: pytest.FixtureRequest) -> None:
    """Apply ``@pytest.mark.que(mode="sync")``; touches no database."""
    marker = request.node.get_closest_marker("que")
    if marker is None:
        return
    unknown = set(marker.kwargs) - {"mode"} or (marker.args and {"positional arguments"})
    if unknown:
        pytest.fail(f"@pytest.mark.que takes only mode=..., not {', '.join(sorted(unknown))}")
    mode = marker.kwargs.get("mode")
    if mode == "sync":
        request.getfixturevalue("que_sync")
    elif mode is not None:
        pytest.fail(f"@pytest.mark.que(mode={mode!r}): the marker supports mode='sync'")
