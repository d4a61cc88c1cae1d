"""A database without que's tables, or with older ones: every entry point says what to run."""

from __future__ import annotations

import psycopg
import pytest

from que import Job, Que, SchemaError
from que.worker import PoolSettings, WorkerPool
from que_testing.fixtures import que_settings


class Plain(Job):
    pass


@pytest.fixture(params=[0, 5], ids=["no tables", "version 5"])
def unmigrated(request, empty_database):
    """``Que.connection`` on a database at schema version 0 or 5, and that version."""
    with (
        psycopg.connect(empty_database, autocommit=True) as connection,
        que_settings(connection=connection),
    ):
        if request.param:
            Que.migrate(version=request.param)
        yield empty_database, request.param


def bulk_enqueue() -> None:
    with Que.bulk_enqueue():
        Plain.enqueue()


@pytest.mark.parametrize(
    "call",
    [lambda: Plain.enqueue(), bulk_enqueue, lambda: Que.work()],
    ids=["enqueue", "bulk enqueue", "work"],
)
def test_library_calls_raise_a_schema_error_with_the_remedy(unmigrated, call):
    with pytest.raises(SchemaError, match=r"Que\.migrate\(\)"):
        call()


def test_the_drivers_error_is_kept_as_the_cause(unmigrated):
    with pytest.raises(SchemaError) as raised:
        Plain.enqueue()
    assert isinstance(
        raised.value.__cause__,
        psycopg.errors.UndefinedTable if unmigrated[1] == 0 else psycopg.errors.UndefinedColumn,
    )


def test_a_worker_pool_refuses_to_start_on_an_unmigrated_database(unmigrated):
    url, version = unmigrated
    pool = WorkerPool(PoolSettings(connection_url=url))
    with pytest.raises(SchemaError, match=r"Que\.migrate\(\)") as raised:
        pool.start()
    assert raised.value.version == version and not pool.running


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        ("SELECT * FROM no_such_table", psycopg.errors.UndefinedTable),
        ("SELECT * FROM que_jobs_archive", psycopg.errors.UndefinedTable),
        ("SELECT unique_code FROM pg_class", psycopg.errors.UndefinedColumn),
    ],
)
def test_the_callers_own_sql_about_a_missing_object_is_left_as_it_is(que_db, statement, error):
    with pytest.raises(error):
        Que.execute(statement)
