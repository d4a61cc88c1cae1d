"""Schema migrations: each step up and down, the same schema as Ruby Que's at every
version (either library migrates a database the other made), the version comment,
the version 7 constraints and the notify triggers."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import CheckViolation, NotNullViolation
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Json, Jsonb

from que import MigrationError, Que, SchemaError
from que._core import migrations

LATEST = 7
ACTIVE_JOB_WRAPPER = "ActiveJob::QueueAdapters::QueAdapter::JobWrapper"

# For comparing que's schema with itself (a down step undoes its up step
# exactly), in more detail than Ruby's catalogs below give: function bodies,
# sequences, column order. Everything que owns is in the public schema and
# named que_*. Each query returns rows in a stable order; attribute numbers are
# left out on purpose (a column dropped and re-added moves).
_QUE_RELATION = "c.relnamespace = 'public'::regnamespace AND starts_with(c.relname, 'que_')"
_SNAPSHOT_QUERIES = {
    "relations": f"""
        SELECT c.relname, c.relkind, c.relpersistence, c.reloptions::text,
               obj_description(c.oid, 'pg_class')
          FROM pg_class AS c
         WHERE {_QUE_RELATION}
         ORDER BY c.relname""",
    "columns": f"""
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               pg_get_expr(d.adbin, d.adrelid), a.attnotnull
          FROM pg_attribute AS a
          JOIN pg_class AS c ON c.oid = a.attrelid
          LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE {_QUE_RELATION} AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY c.relname, a.attnum""",
    "sequences": f"""
        SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement,
               s.seqmin, s.seqmax, s.seqcycle, owner.relname, col.attname
          FROM pg_sequence AS s
          JOIN pg_class AS c ON c.oid = s.seqrelid
          LEFT JOIN pg_depend AS dep
            ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
           AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
          LEFT JOIN pg_class AS owner ON owner.oid = dep.refobjid
          LEFT JOIN pg_attribute AS col
            ON col.attrelid = dep.refobjid AND col.attnum = dep.refobjsubid
         WHERE {_QUE_RELATION}
         ORDER BY c.relname""",
    "indexes": f"""
        SELECT c.relname, pg_get_indexdef(i.indexrelid)
          FROM pg_index AS i
          JOIN pg_class AS c ON c.oid = i.indrelid
         WHERE {_QUE_RELATION}
         ORDER BY 1, 2""",
    "constraints": f"""
        SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.convalidated
          FROM pg_constraint AS con
          JOIN pg_class AS c ON c.oid = con.conrelid
         WHERE {_QUE_RELATION}
         ORDER BY 1, 2""",
    "functions": """
        SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
          FROM pg_proc AS p
         WHERE p.pronamespace = 'public'::regnamespace AND starts_with(p.proname, 'que_')
         ORDER BY 1""",
    "triggers": f"""
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
          FROM pg_trigger AS t
          JOIN pg_class AS c ON c.oid = t.tgrelid
         WHERE {_QUE_RELATION} AND NOT t.tgisinternal
         ORDER BY 1, 2""",
}


def schema_snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Everything que's migrations create, as comparable rows."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return {name: cur.execute(query).fetchall() for name, query in _SNAPSHOT_QUERIES.items()}


def insert_row(conn: psycopg.Connection[Any], table: str, **columns: Any) -> dict[str, Any]:
    """Insert one row into public.<table> and return it."""
    query = sql.SQL("INSERT INTO public.{} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, list(columns.values())).fetchone()
    assert row is not None
    return row


def insert_job(conn: psycopg.Connection[Any], **columns: Any) -> int:
    """Insert a version 7 job row (id returned); columns override the defaults."""
    row: dict[str, Any] = {"job_class": "TestJob", "job_schema_version": 2, **columns}
    return int(insert_row(conn, "que_jobs", **row)["id"])


def insert_locker(conn: psycopg.Connection[Any], **columns: Any) -> None:
    row: dict[str, Any] = {
        "pid": 0,
        "worker_count": 1,
        "worker_priorities": [10, None],
        "ruby_pid": 1,
        "ruby_hostname": "test-host",
        "queues": ["default"],
        "listening": True,
        "job_schema_version": 2,
        **columns,
    }
    insert_row(conn, "que_lockers", **row)


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute(query, params).fetchone()
    assert row is not None
    return row[0]


# --- versions -----------------------------------------------------------------


def test_steps_down_to_zero_and_back_up(que_db: psycopg.Connection[Any]) -> None:
    assert Que.db_version() == LATEST
    for version in range(LATEST - 1, -1, -1):
        Que.migrate(version=version)
        assert Que.db_version() == version
    assert scalar(que_db, "SELECT to_regclass('public.que_jobs')") is None

    for version in range(1, LATEST + 1):
        Que.migrate(version=version)
        assert Que.db_version() == version


def test_zero_to_latest_recreates_the_same_schema(que_db: psycopg.Connection[Any]) -> None:
    original = schema_snapshot(que_db)

    Que.migrate(version=0)
    assert Que.db_version() == 0
    assert all(rows == [] for rows in schema_snapshot(que_db).values())

    Que.migrate(version=LATEST)
    assert Que.db_version() == LATEST
    assert schema_snapshot(que_db) == original


@pytest.mark.parametrize("version", range(1, LATEST + 1))
def test_down_exactly_undoes_up(que_db: psycopg.Connection[Any], version: int) -> None:
    Que.migrate(version=0)  # reach version - 1 going up, so each down is checked against its up
    Que.migrate(version=version - 1)
    before = schema_snapshot(que_db)

    Que.migrate(version=version)
    assert Que.db_version() == version
    assert schema_snapshot(que_db) != before

    Que.migrate(version=version - 1)
    assert Que.db_version() == version - 1
    assert schema_snapshot(que_db) == before


@pytest.mark.parametrize("version", [LATEST + 1, 99, -1])
def test_unknown_versions_are_refused(que_db: psycopg.Connection[Any], version: int) -> None:
    with pytest.raises(MigrationError, match=re.escape(str(version))):
        Que.migrate(version=version)
    assert Que.db_version() == LATEST


def comment_on_que_jobs(conn: psycopg.Connection[Any], comment: str | None) -> None:
    """Set the comment that holds the schema version (``None``: no comment)."""
    conn.execute(sql.SQL("COMMENT ON TABLE public.que_jobs IS {}").format(sql.Literal(comment)))


UNREADABLE_COMMENTS = {
    "no comment": (None, "has no comment"),
    "empty (PostgreSQL removes it)": ("", "has no comment"),
    "a word": ("seven", "has the comment 'seven', which is not a version number"),
    "a decimal": ("7.0", "has the comment '7.0', which is not a version number"),
    "spaces": (" 7", "has the comment ' 7', which is not a version number"),
    "negative": ("-1", "has the comment '-1', which is not a version number"),
    "zero, with the table": ("0", "has the comment '0', which is not a version number"),
    "a non-ASCII digit": ("\u0667", "has the comment '\u0667', which is not a version number"),
}


@pytest.mark.parametrize(
    ("comment", "problem"), UNREADABLE_COMMENTS.values(), ids=UNREADABLE_COMMENTS.keys()
)
def test_a_version_comment_que_cannot_read_is_refused(
    que_db: psycopg.Connection[Any], comment: str | None, problem: str
) -> None:
    """Guessing (no comment used to read as version 1) would run the wrong steps."""
    comment_on_que_jobs(que_db, comment)
    before = schema_snapshot(que_db)

    with pytest.raises(SchemaError) as excinfo:
        Que.migrate()
    message = str(excinfo.value)
    assert f"public.que_jobs {problem}" in message
    assert "COMMENT ON TABLE public.que_jobs IS '<version>'" in message
    assert excinfo.value.version is None
    assert schema_snapshot(que_db) == before

    comment_on_que_jobs(que_db, str(LATEST))  # the remedy the message gives
    Que.migrate()
    assert migrations.db_version(que_db) == LATEST


def test_the_que_command_check_names_the_database(que_db: psycopg.Connection[Any]) -> None:
    comment_on_que_jobs(que_db, None)
    with pytest.raises(SchemaError) as excinfo:
        migrations.require_latest(que_db, "app on db:5432")
    assert str(excinfo.value).startswith("cannot tell the que schema version of app on db:5432: ")


def test_que_db_version_refuses_an_unreadable_comment(que_db: psycopg.Connection[Any]) -> None:
    comment_on_que_jobs(que_db, None)
    with pytest.raises(SchemaError, match="has no comment"):
        Que.db_version()


# --- the same schema as Ruby's Que, version by version ----------------------------
#
# tests/ruby_que_schema/vN.txt is Ruby Que 2.4.1's catalog at version N, as its
# snapshot.sql prints it; tests/ruby_que_migrations/ holds Ruby Que's own steps.
# The tests work in a database of their own (snapshot.sql reads every trigger of
# the database), each inside a transaction that is rolled back; a test walks
# through the versions one step at a time and tries each branch in a savepoint,
# which keeps them to a few hundred milliseconds each.

TESTS = Path(__file__).resolve().parent
RUBY_SCHEMA = TESTS / "ruby_que_schema"
RUBY_MIGRATIONS = TESTS / "ruby_que_migrations"
CATALOG_QUERIES = (RUBY_SCHEMA / "snapshot.sql").read_text()
VERSIONS = range(1, LATEST + 1)


@pytest.fixture(scope="module")
def _empty_database(que_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """One database for the module (unlike ``empty_database``: one per test), as
    every test here leaves it empty."""
    name = f"{conninfo_to_dict(que_database_url)['dbname']}_ruby_schema"
    with psycopg.connect(que_database_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        try:
            with psycopg.connect(que_database_url, dbname=name) as conn:
                yield conn
        finally:
            admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))


@pytest.fixture
def empty_db(_empty_database: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A database with nothing in it, like the one Ruby's catalogs were read in."""
    with _empty_database.transaction(force_rollback=True):
        yield _empty_database


def catalog(conn: psycopg.Connection[Any]) -> list[str]:
    """snapshot.sql's output as ``psql -tA`` prints it: fields joined by ``|``,
    NULL as nothing, a value with line breaks over several lines."""
    rows: list[str] = []
    with conn.cursor() as cur:
        cur.execute(CATALOG_QUERIES)
        while True:
            result = cur.pgresult
            assert result is not None
            rows.extend(
                "|".join(
                    (result.get_value(row, field) or b"").decode()
                    for field in range(result.nfields)
                )
                for row in range(result.ntuples)
            )
            if not cur.nextset():
                return "\n".join(rows).splitlines()


def ruby_catalog(version: int) -> list[str]:
    if version == 0:
        return []
    return (RUBY_SCHEMA / f"v{version}.txt").read_text().splitlines()


def ruby_catalog_after_its_down_steps(version: int) -> list[str]:
    """Ruby's 7 -> 6 step leaves que_state_notify with 7's WHEN, and its 6, 5 and 4
    keep it (see ruby_que_schema/README.md); que's own down steps are exact."""
    state_trigger = "trigger|que_jobs|que_state_notify|"
    (latest,) = [line for line in ruby_catalog(LATEST) if line.startswith(state_trigger)]
    return [latest if line.startswith(state_trigger) else line for line in ruby_catalog(version)]


def column_order(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Each que table's columns in order, which the catalog (sorted by name) does not show."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(
            "SELECT table_name::text, column_name::text FROM information_schema.columns"
            " WHERE table_schema = 'public' AND starts_with(table_name, 'que_')"
            " ORDER BY table_name, ordinal_position"
        ).fetchall()


def que_migrate(conn: psycopg.Connection[Any], version: int) -> None:
    with Que.using(conn):
        Que.migrate(version=version)


def ruby_migrate(conn: psycopg.Connection[Any], version: int) -> None:
    """What Ruby Que's ``Migrations.migrate!(version:)`` does: its step files from
    the version the comment says to ``version``, then the comment (not for 0)."""
    current = int(
        scalar(
            conn,
            "SELECT coalesce(obj_description(to_regclass('public.que_jobs'), 'pg_class'), '0')",
        )
    )
    if version == current:
        return
    steps = (
        [RUBY_MIGRATIONS / str(step) / "up.sql" for step in range(current + 1, version + 1)]
        if version > current
        else [RUBY_MIGRATIONS / str(step) / "down.sql" for step in range(current, version, -1)]
    )
    with conn.transaction():
        for step in steps:
            conn.execute(step.read_text())
        if version:
            comment_on_que_jobs(conn, str(version))


MIGRATORS = {"que": que_migrate, "ruby": ruby_migrate}
BY_ONE_THEN_THE_OTHER = pytest.mark.parametrize(
    ("maker", "migrator"),
    [("ruby", "que"), ("que", "ruby")],
    ids=["made by ruby, migrated by que", "made by que, migrated by ruby"],
)


def test_each_version_is_ruby_ques(empty_db: psycopg.Connection[Any]) -> None:
    """Up from nothing and down from 7, que's version N is Ruby's, with the columns
    in Ruby's order (which the catalog, sorted by name, does not show)."""
    ruby_columns = {}
    with empty_db.transaction(force_rollback=True):
        for version in VERSIONS:
            ruby_migrate(empty_db, version)
            assert catalog(empty_db) == ruby_catalog(version), f"Ruby's steps to {version}"
            ruby_columns[version] = column_order(empty_db)

    for version in [*VERSIONS, *reversed(range(LATEST))]:
        que_migrate(empty_db, version)
        assert catalog(empty_db) == ruby_catalog(version), f"que's steps to {version}"
        assert column_order(empty_db) == ruby_columns.get(version, []), f"columns at {version}"


@BY_ONE_THEN_THE_OTHER
def test_a_database_at_any_version_upgrades_with_the_other_library(
    empty_db: psycopg.Connection[Any], maker: str, migrator: str
) -> None:
    for version in VERSIONS:
        MIGRATORS[maker](empty_db, version)
        with empty_db.transaction(force_rollback=True):
            MIGRATORS[migrator](empty_db, LATEST)
            assert catalog(empty_db) == ruby_catalog(LATEST), f"upgraded from {version}"


@BY_ONE_THEN_THE_OTHER
def test_a_database_at_7_downgrades_with_the_other_library(
    empty_db: psycopg.Connection[Any], maker: str, migrator: str
) -> None:
    """Down to each version; where Ruby's steps leave more than a fresh database
    has, the maker takes it back up to a fresh 7 all the same."""
    expected = ruby_catalog_after_its_down_steps if migrator == "ruby" else ruby_catalog
    MIGRATORS[maker](empty_db, LATEST)
    for version in reversed(range(LATEST)):
        MIGRATORS[migrator](empty_db, version)
        assert catalog(empty_db) == expected(version), f"downgraded to {version}"
        if expected(version) != ruby_catalog(version):
            with empty_db.transaction(force_rollback=True):
                MIGRATORS[maker](empty_db, LATEST)
                assert catalog(empty_db) == ruby_catalog(LATEST), f"up again from {version}"


def test_job_schema_version_must_be_given(que_db: psycopg.Connection[Any]) -> None:
    with pytest.raises(NotNullViolation), que_db.transaction():
        insert_row(que_db, "que_jobs", job_class="TestJob")


# --- data carried across versions -----------------------------------------------


def test_down_to_3_deletes_finished_and_expired_jobs(que_db: psycopg.Connection[Any]) -> None:
    ready = insert_job(que_db)
    errored = insert_job(que_db, error_count=1, last_error_message="boom")
    insert_job(que_db, finished_at="2020-01-01T00:00:00Z")
    insert_job(que_db, expired_at="2020-01-01T00:00:00Z")

    Que.migrate(version=3)

    remaining = Que.execute("SELECT job_id FROM public.que_jobs ORDER BY job_id")
    assert [row["job_id"] for row in remaining] == [ready, errored]


def test_version_1_rows_keep_their_priority_on_the_way_to_7(
    que_db: psycopg.Connection[Any],
) -> None:
    Que.migrate(version=0)
    Que.migrate(version=1)
    job_id = insert_row(que_db, "que_jobs", job_class="OldJob", priority=5)["job_id"]

    Que.migrate(version=LATEST)
    assert Que.execute("SELECT id, priority, queue, args FROM public.que_jobs") == [
        {"id": job_id, "priority": 5, "queue": "default", "args": []}
    ]


def test_version_3_rows_survive_the_trip_to_7_and_back(que_db: psycopg.Connection[Any]) -> None:
    Que.migrate(version=3)
    job_id = insert_row(
        que_db,
        "que_jobs",
        job_class="OldJob",
        args=Json([1, "two"]),
        queue="",
        error_count=2,
        last_error="RuntimeError: boom\nline 1\nline 2",
    )["job_id"]
    other_id = insert_row(
        que_db, "que_jobs", job_class="OldJob", args=Json({"a": 1}), queue="mail"
    )["job_id"]

    Que.migrate(version=LATEST)
    upgraded = {
        row["id"]: row
        for row in Que.execute(
            "SELECT id, queue, args, data, kwargs, job_schema_version,"
            " last_error_message, last_error_backtrace FROM public.que_jobs"
        )
    }
    assert upgraded[job_id] == {
        "id": job_id,
        "queue": "default",
        "args": [1, "two"],
        "data": {},
        "kwargs": {},
        "job_schema_version": 1,
        "last_error_message": "RuntimeError: boom",
        "last_error_backtrace": "line 1\nline 2",
    }
    assert upgraded[other_id]["queue"] == "mail"
    assert upgraded[other_id]["args"] == [{"a": 1}]  # non-array args are wrapped

    Que.migrate(version=3)
    downgraded = Que.execute(
        "SELECT job_id, queue, args::text AS args, error_count, last_error"
        " FROM public.que_jobs ORDER BY job_id"
    )
    assert [(row["job_id"], row["queue"], json.loads(row["args"])) for row in downgraded] == [
        (job_id, "", [1, "two"]),
        (other_id, "mail", [{"a": 1}]),
    ]
    assert downgraded[0]["error_count"] == 2
    assert downgraded[0]["last_error"] == "RuntimeError: boom\nline 1\nline 2"


def test_version_5_jobs_are_upgraded_as_ruby_que_1_wrote_them(
    que_db: psycopg.Connection[Any],
) -> None:
    Que.migrate(version=5)
    defaulted = int(insert_row(que_db, "que_jobs", job_class="OldJob")["id"])
    explicit_null = int(
        insert_row(que_db, "que_jobs", job_class="OldJob", job_schema_version=None)["id"]
    )
    assert Que.execute(
        "SELECT job_schema_version FROM public.que_jobs WHERE id = %s", [defaulted]
    ) == [{"job_schema_version": 1}]

    Que.migrate(version=LATEST)
    upgraded = Que.execute("SELECT id, job_schema_version, kwargs FROM public.que_jobs ORDER BY id")
    assert upgraded == [
        {"id": defaulted, "job_schema_version": 1, "kwargs": {}},
        {"id": explicit_null, "job_schema_version": 1, "kwargs": {}},
    ]


# --- constraints -----------------------------------------------------------------


def _tags(*tags: Any) -> Jsonb:
    return Jsonb({"tags": list(tags)})


BAD_JOBS = {
    "args not an array": ({"args": Jsonb({"a": 1})}, "valid_args"),
    "data not an object": ({"data": Jsonb([])}, "valid_data"),
    "tags not an array": ({"data": Jsonb({"tags": "a"})}, "valid_data"),
    "six tags": ({"data": _tags(*"abcdef")}, "valid_data"),
    "non-string tag": ({"data": _tags("a", 1)}, "valid_data"),
    "99-char tag": ({"data": _tags("t" * 99)}, "valid_data"),
    "101-char queue": ({"queue": "q" * 101}, "queue_length"),
    "201-char job_class": ({"job_class": "J" * 201}, "job_class_length"),
    "201-char wrapped job_class": (
        {"job_class": ACTIVE_JOB_WRAPPER, "args": Jsonb([{"job_class": "J" * 201}])},
        "job_class_length",
    ),
    "501-char error message": ({"last_error_message": "e" * 501}, "error_length"),
    "10001-char backtrace": ({"last_error_backtrace": "b" * 10001}, "error_length"),
}

GOOD_JOBS = {
    "98-char tag": {"data": _tags("t" * 98)},
    "five tags": {"data": _tags(*"abcde")},
    "no tags": {"data": Jsonb({"other": [1]})},
    "100-char queue": {"queue": "q" * 100},
    "200-char job_class": {"job_class": "J" * 200},
    "long wrapper, short wrapped job_class": {
        "job_class": ACTIVE_JOB_WRAPPER,
        "args": Jsonb([{"job_class": "J" * 200}]),
    },
    "500-char error message": {"last_error_message": "e" * 500},
    "10000-char backtrace": {"last_error_backtrace": "b" * 10000},
}


@pytest.mark.parametrize(("columns", "constraint"), BAD_JOBS.values(), ids=BAD_JOBS.keys())
def test_bad_jobs_are_rejected(
    que_db: psycopg.Connection[Any], columns: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(CheckViolation) as excinfo, que_db.transaction():
        insert_job(que_db, **columns)
    assert excinfo.value.diag.constraint_name == constraint


@pytest.mark.parametrize("columns", GOOD_JOBS.values(), ids=GOOD_JOBS.keys())
def test_jobs_at_the_limits_are_accepted(
    que_db: psycopg.Connection[Any], columns: dict[str, Any]
) -> None:
    job_id = insert_job(que_db, **columns)
    assert Que.execute("SELECT count(*) AS n FROM public.que_jobs WHERE id = %s", [job_id]) == [
        {"n": 1}
    ]


BAD_LOCKERS = {
    "no priorities": ({"worker_priorities": []}, "valid_worker_priorities"),
    "2-D priorities": ({"worker_priorities": [[1, 2], [3, 4]]}, "valid_worker_priorities"),
    "no queues": ({"queues": []}, "valid_queues"),
    "2-D queues": ({"queues": [["a", "b"], ["c", "d"]]}, "valid_queues"),
}


@pytest.mark.parametrize(("columns", "constraint"), BAD_LOCKERS.values(), ids=BAD_LOCKERS.keys())
def test_bad_lockers_are_rejected(
    que_db: psycopg.Connection[Any], columns: dict[str, Any], constraint: str
) -> None:
    with pytest.raises(CheckViolation) as excinfo, que_db.transaction():
        insert_locker(que_db, **columns)
    assert excinfo.value.diag.constraint_name == constraint


def test_que_values_holds_objects_only(que_db: psycopg.Connection[Any]) -> None:
    insert_row(que_db, "que_values", key="ok", value=Jsonb({"a": 1}))
    with pytest.raises(CheckViolation), que_db.transaction():
        insert_row(que_db, "que_values", key="bad", value=Jsonb([1]))


# --- notify triggers --------------------------------------------------------------
#
# A notification is delivered only when its transaction commits, so these tests
# use a second, autocommit connection to the (already migrated) test database.
# It registers itself as a locker and inserts jobs in a queue of its own; a
# connection receives its own notifications before its statement returns, so
# no waiting is needed. Everything it commits is deleted afterwards.


class Listener:
    """A committing connection that plays a locker: it listens on its own channel."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.pid: int = conn.info.backend_pid
        self.queue = f"test-migrations-{uuid.uuid4().hex}"
        self.locker_pids: list[int] = []
        self.received: list[psycopg.Notify] = []
        conn.add_notify_handler(self.received.append)
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(f"que_listener_{self.pid}")))

    def messages(self, channel: str) -> list[dict[str, Any]]:
        found = [json.loads(n.payload) for n in self.received if n.channel == channel]
        self.received.clear()
        return found

    def add_locker(self, **columns: Any) -> None:
        """Register a locker (by default this connection) that works this test's queue."""
        row: dict[str, Any] = {"pid": self.pid, "queues": [self.queue], **columns}
        insert_locker(self.conn, **row)
        self.locker_pids.append(row["pid"])

    def insert_job(self, **columns: Any) -> int:
        return insert_job(self.conn, queue=self.queue, **columns)

    def clean_up(self) -> None:
        self.conn.execute("DELETE FROM public.que_jobs WHERE queue = %s", [self.queue])
        self.conn.execute("DELETE FROM public.que_lockers WHERE pid = ANY(%s)", [self.locker_pids])


@pytest.fixture
def listener(que_db: psycopg.Connection[Any]) -> Iterator[Listener]:
    conn = psycopg.connect(que_db.info.dsn, password=que_db.info.password, autocommit=True)
    with conn:
        conn.execute("SET lock_timeout = '10s'")  # fail, not hang, if que_db holds a lock
        conn.execute("SET TimeZone = 'America/Sao_Paulo'")  # notifications must be in UTC anyway
        version = scalar(conn, "SELECT obj_description(to_regclass('public.que_jobs'), 'pg_class')")
        assert version == str(LATEST), "the test database must be migrated and committed"
        listener = Listener(conn)
        try:
            yield listener
        finally:
            listener.clean_up()


def _expected_locker(lockers: dict[int, int], job_id: int) -> int:
    """The pid que_job_notify picks among {pid: worker_count} for job_id."""
    slots = sorted(
        (hashlib.md5(f"{pid}{n}".encode()).hexdigest(), pid, n)
        for pid, count in lockers.items()
        for n in range(1, count + 1)
    )
    return slots[job_id % len(slots)][1]


def test_ready_job_is_announced_to_a_listening_locker(listener: Listener) -> None:
    listener.add_locker(queues=["other", listener.queue])

    job_id = listener.insert_job(priority=7, run_at="2020-01-02T03:04:05.678901+02:00")

    assert listener.messages(f"que_listener_{listener.pid}") == [
        {
            "message_type": "job_available",
            "queue": listener.queue,
            "priority": 7,
            "id": job_id,
            "run_at": "2020-01-02T01:04:05.678901Z",
        }
    ]


@pytest.mark.parametrize(
    "locker",
    [
        pytest.param({"listening": False}, id="not listening"),
        pytest.param({"queues": ["other"]}, id="other queue"),
        pytest.param({"job_schema_version": 1}, id="other job schema version"),
    ],
)
def test_locker_is_not_told_about_jobs_it_cannot_work(
    listener: Listener, locker: dict[str, Any]
) -> None:
    listener.add_locker(**locker)
    listener.insert_job()
    assert listener.messages(f"que_listener_{listener.pid}") == []


def test_scheduled_jobs_and_skip_notify_send_nothing(listener: Listener) -> None:
    listener.add_locker()

    listener.insert_job(run_at="2999-01-01T00:00:00Z")
    with listener.conn.transaction():
        listener.conn.execute("SET LOCAL que.skip_notify = 'true'")
        listener.insert_job()
    assert listener.messages(f"que_listener_{listener.pid}") == []
    assert listener.messages("que_state") == []  # not listening there

    control = listener.insert_job()  # the setting was local to that transaction
    assert [m["id"] for m in listener.messages(f"que_listener_{listener.pid}")] == [control]


def test_jobs_are_spread_over_lockers_by_worker_count(listener: Listener) -> None:
    other_pid = -listener.pid  # no backend has it, so its notifications go nowhere
    lockers = {listener.pid: 3, other_pid: 2}
    for pid, count in lockers.items():
        listener.add_locker(pid=pid, worker_count=count)

    job_ids = [listener.insert_job() for _ in range(20)]

    announced = [m["id"] for m in listener.messages(f"que_listener_{listener.pid}")]
    expected = [i for i in job_ids if _expected_locker(lockers, i) == listener.pid]
    assert announced == expected
    assert 0 < len(announced) < len(job_ids)


def test_state_changes_are_announced_on_que_state(listener: Listener) -> None:
    listener.conn.execute("LISTEN que_state")
    job_id = listener.insert_job(data=Jsonb({"tags": ["t1"]}))
    listener.conn.execute("UPDATE public.que_jobs SET error_count = 0 WHERE id = %s", [job_id])
    listener.conn.execute("UPDATE public.que_jobs SET finished_at = now() WHERE id = %s", [job_id])
    listener.conn.execute("DELETE FROM public.que_jobs WHERE id = %s", [job_id])

    messages = [m for m in listener.messages("que_state") if m["id"] == job_id]
    assert [(m["previous_state"], m["current_state"]) for m in messages] == [
        ("nonexistent", "ready"),
        ("ready", "finished"),  # the first update changed no state and sent nothing
        ("finished", "nonexistent"),
    ]
    assert messages[0]["message_type"] == "job_change"
    assert messages[0]["queue"] == listener.queue
    assert messages[0]["tags"] == ["t1"]
    assert messages[0]["job_class"] == "TestJob"
