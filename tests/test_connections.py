"""Que.connection: plain connections, pools and callables; reentrancy; transactions."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool
from worker_jobs import ConnectsNowhere

from que import ConfigurationError, Job, Que
from que._core.db import with_connection_defaults
from que_testing.fixtures import que_settings


class Plain(Job):
    pass


def count_jobs(conninfo: str) -> int:
    """Count jobs from a connection of its own, so only committed rows show."""
    with psycopg.connect(conninfo) as connection:
        return connection.execute("SELECT count(*) FROM que_jobs").fetchone()[0]


def test_no_connection_configured_says_how_to_configure_one():
    with (
        que_settings(connection=None),
        pytest.raises(ConfigurationError, match=r"Que\.connection to a psycopg"),
    ):
        Plain.enqueue()


def test_an_unusable_connection_target_is_refused_as_a_type_error():
    with pytest.raises(ConfigurationError, match="cannot use 42") as raised:
        Que.connection = 42
    assert isinstance(raised.value, TypeError)


def test_a_provider_must_lend_a_psycopg_connection():
    @contextmanager
    def wrong():
        yield "not a connection"

    with que_settings(connection=wrong), pytest.raises(ConfigurationError, match="must lend"):
        Que.execute("SELECT 1")


def test_nested_checkouts_share_one_connection(que_committed_db):
    with Que.checkout() as outer, Que.checkout() as inner:
        assert outer is inner
        with Que.transaction() as in_transaction:
            assert in_transaction is outer


def test_threads_get_their_own_connections(que_committed_db):
    seen = {}
    barrier = threading.Barrier(2)

    def hold(name):
        with Que.checkout() as connection:
            barrier.wait(timeout=10)
            seen[name] = connection

    threads = [threading.Thread(target=hold, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen["a"] is not seen["b"]


def test_a_single_connection_is_lent_to_one_thread_at_a_time(que_database_url):
    with (
        psycopg.connect(que_database_url, autocommit=True) as connection,
        que_settings(connection=connection),
    ):
        order = []
        with Que.checkout():
            other = threading.Thread(
                target=lambda: (Que.execute("SELECT 1"), order.append("other"))
            )
            other.start()
            other.join(timeout=0.2)
            order.append("holder")
        other.join(timeout=10)
        assert order == ["holder", "other"]


def test_pool_enqueue_commits_with_the_transaction(que_committed_db, que_database_url):
    with pytest.raises(RuntimeError), Que.transaction():
        Plain.enqueue()
        raise RuntimeError("roll back")
    assert count_jobs(que_database_url) == 0
    with Que.transaction():
        Plain.enqueue()
        assert count_jobs(que_database_url) == 0  # not visible until commit
    assert count_jobs(que_database_url) == 1


def test_pool_enqueue_outside_a_transaction_commits_at_once(que_committed_db, que_database_url):
    Plain.enqueue()
    assert count_jobs(que_database_url) == 1


def test_enqueue_on_the_callers_own_connection(que_committed_db, que_database_url):
    with que_committed_db.connection() as connection, Que.using(connection):
        with connection.transaction():
            Plain.enqueue()
            connection.execute("SELECT 1")
        with pytest.raises(RuntimeError), connection.transaction():
            Plain.enqueue()
            raise RuntimeError("roll back")
    assert count_jobs(que_database_url) == 1


def test_que_leaves_committing_to_the_owner_of_a_plain_connection(que_database_url):
    with psycopg.connect(que_database_url) as connection, que_settings(connection=connection):
        Plain.enqueue()
        assert count_jobs(que_database_url) == 0
        connection.rollback()
        Plain.enqueue()
        connection.commit()
        assert count_jobs(que_database_url) == 1
        Que.clear()
        connection.commit()


def test_an_autocommit_connection_commits_each_enqueue(que_database_url):
    with (
        psycopg.connect(que_database_url, autocommit=True) as connection,
        que_settings(connection=connection),
    ):
        Plain.enqueue()
        assert count_jobs(que_database_url) == 1
        Que.clear()


def test_callable_provider(que_database_url):
    lent = []

    with ConnectionPool(que_database_url, min_size=1, max_size=2, open=True) as pool:

        @contextmanager
        def provider():
            with pool.connection() as connection:
                lent.append(connection)
                yield connection

        with que_settings(connection=provider):
            with Que.transaction():
                Plain.enqueue()
                Plain.enqueue()
            assert len(lent) == 1
            assert count_jobs(que_database_url) == 2
            Que.clear()


def test_transaction_is_reentrant_with_savepoints(que_committed_db, que_database_url):
    with Que.transaction():
        Plain.enqueue("outer")
        with pytest.raises(RuntimeError), Que.transaction():
            Plain.enqueue("inner")
            raise RuntimeError("inner only")
    assert [row["args"] for row in Que.jobs()] == [["outer"]]


def test_execute_returns_dict_rows_and_binds_parameters(que_db):
    assert Que.execute("SELECT %s::int AS n", [5]) == [{"n": 5}]
    assert Que.execute("SELECT %(word)s AS word", {"word": "'; DROP TABLE que_jobs; --"}) == [
        {"word": "'; DROP TABLE que_jobs; --"}
    ]
    assert Que.execute("CREATE TEMP TABLE t (n int)") == []


def test_que_connections_get_keepalive_defaults_that_the_url_and_environment_override(
    monkeypatch,
):
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    given = conninfo_to_dict(
        with_connection_defaults(
            "postgresql://app@db/app?keepalives_idle=3", application_name="que-locker"
        )
    )
    assert given == {
        "user": "app",
        "host": "db",
        "dbname": "app",
        "keepalives_idle": "3",
        "keepalives": "1",
        "keepalives_interval": "5",
        "keepalives_count": "3",
        "tcp_user_timeout": "30000",
        "connect_timeout": "10",
        "application_name": "que-locker",
    }
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "2")
    assert "connect_timeout" not in conninfo_to_dict(with_connection_defaults("dbname=app"))


def test_a_jobs_own_connection_error_is_its_error_whatever_closes_ques_connection(
    que_committed_db, que_database_url
):
    """A callable provider closes each connection it lent: that is not a lost one."""
    with que_settings(connection=lambda: psycopg.connect(que_database_url)):
        job = ConnectsNowhere.enqueue()
        summary = Que.work()
        (row,) = Que.execute("SELECT error_count FROM que_jobs WHERE id = %s", [job.id])
    assert summary.failed == 1 and row["error_count"] == 1
