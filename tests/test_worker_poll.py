"""One poll: what it locks, and what it leaves alone."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from que import Job, Que
from que._core import sql
from que.worker import _poller as poller
from que.worker._buffer import Slots
from que.worker.settings import ANY_PRIORITY


class Noop(Job):
    def run(self):
        pass


@pytest.fixture
def connections(que_committed_db, que_database_url):
    with (
        psycopg.connect(que_database_url, autocommit=True) as locker,
        psycopg.connect(que_database_url, autocommit=True) as other,
    ):
        yield locker, other


def held_by(connection) -> list[int]:
    rows = connection.execute(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND pid = pg_backend_pid() ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def test_a_poll_locks_exactly_what_it_returns_past_jobs_held_elsewhere(connections):
    locker, other = connections
    ids = [Noop.enqueue().id for _ in range(10)]
    for job_id in ids[:5]:
        other.execute("SELECT pg_advisory_lock(%s)", [job_id])
    result = poller.poll(locker, "default", Slots([ANY_PRIORITY] * 2), held=(), now=None)
    assert sorted(row["id"] for row in result.rows) == ids[5:7]
    assert held_by(locker) == ids[5:7]
    assert result.more


def test_a_poll_skips_jobs_this_process_holds(connections):
    locker, _ = connections
    ids = [Noop.enqueue().id for _ in range(3)]
    locker.execute("SELECT pg_advisory_lock(%s)", [ids[0]])
    result = poller.poll(locker, "default", Slots([ANY_PRIORITY] * 5), held=[ids[0]], now=None)
    assert sorted(row["id"] for row in result.rows) == ids[1:]
    assert held_by(locker) == ids
    assert not result.more


def test_a_poll_takes_only_what_the_slots_accept(connections):
    locker, _ = connections
    important = Noop.enqueue(job_options={"priority": 5}).id
    Noop.enqueue(job_options={"priority": 50})
    result = poller.poll(locker, "default", Slots([10]), held=(), now=None)
    assert [row["id"] for row in result.rows] == [important]
    assert held_by(locker) == [important]


def test_finished_jobs_are_never_locked(connections):
    locker, _ = connections
    job = Noop.enqueue()
    Que.execute("UPDATE que_jobs SET finished_at = now() WHERE id = %s", [job.id])
    result = poller.poll(locker, "default", Slots([ANY_PRIORITY]), held=(), now=None)
    assert result.rows == []
    assert held_by(locker) == []


def test_a_poll_that_passed_held_jobs_says_where_follow_up_polls_can_start(connections):
    locker, other = connections
    ids = [Noop.enqueue().id for _ in range(6)]
    for job_id in ids[:3]:
        other.execute("SELECT pg_advisory_lock(%s)", [job_id])
    first = poller.poll(locker, "default", Slots([ANY_PRIORITY]), held=(), now=None)
    assert [row["id"] for row in first.rows] == [ids[3]]
    assert first.resume_from is not None and first.resume_from.id == ids[3]

    # A follow-up starts there, so a job released before it in the meantime
    # waits for the next full walk.
    other.execute("SELECT pg_advisory_unlock(%s)", [ids[0]])
    follow_up = poller.poll(
        locker, "default", Slots([ANY_PRIORITY]), held=[ids[3]], now=None, start=first.resume_from
    )
    assert [row["id"] for row in follow_up.rows] == [ids[4]]
    assert follow_up.resume_from is None  # it passed no job held elsewhere
    full = poller.poll(locker, "default", Slots([ANY_PRIORITY]), held=ids[3:5], now=None)
    assert [row["id"] for row in full.rows] == [ids[0]]
    assert full.resume_from is None
    assert held_by(locker) == [ids[0], ids[3], ids[4]]


def test_a_full_walk_starts_before_the_most_important_job_there_can_be(connections):
    locker, _ = connections
    first = Noop.enqueue(
        job_options={"priority": -32768, "run_at": datetime.min.replace(tzinfo=UTC)}
    ).id
    result = poller.poll(locker, "default", Slots([ANY_PRIORITY]), held=(), now=None)
    assert [row["id"] for row in result.rows] == [first]


def test_a_poll_locks_only_as_many_jobs_as_there_are_slots_for_them(connections):
    locker, _ = connections
    ids = [Noop.enqueue().id for _ in range(3)]
    statements = []
    Que.sql_middleware.append(lambda sql, params, call_next: (statements.append(sql), call_next()))
    try:
        result = poller.poll(locker, "default", Slots([10, 30, ANY_PRIORITY]), held=(), now=None)
    finally:
        Que.sql_middleware.clear()
    assert [row["id"] for row in result.rows] == ids[:1]
    assert result.more
    assert held_by(locker) == ids[:1]
    assert sql.UNLOCK_JOBS not in statements  # none locked in vain


def test_a_poll_that_finds_nothing_says_nothing_was_left_behind(connections):
    locker, _ = connections
    result = poller.poll(locker, "default", Slots([ANY_PRIORITY]), held=(), now=None)
    assert result.rows == []
    assert not result.more
