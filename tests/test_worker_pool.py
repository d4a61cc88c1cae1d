"""The worker pool in this process, against the real test database."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from worker_fixtures import job_count, ledger, locked_ids, scalar, wait_for
from worker_jobs import Block, ConnectsNowhere, Fail, Record, Resolve

from que import ConfigurationError, Que
from que._core import sql
from que.worker import PoolSettings, WorkerPool, inprocess
from que.worker import _locks as locks
from que.worker import _poller as poller
from que.worker._buffer import Slots
from que.worker._locks import WorkerLock
from que.worker.settings import ANY_PRIORITY

FAST = {"poll_interval": 0.05, "wait_period": 0.01}


@pytest.fixture
def start_pool(worker_db: psycopg.Connection[Any]) -> Iterator[Callable[..., WorkerPool]]:
    """Start worker pools in this process; stopped after the test, before the lock check."""
    pools: list[WorkerPool] = []

    def start(**settings: Any) -> WorkerPool:
        pool = WorkerPool(PoolSettings(**settings))
        pools.append(pool)
        return pool.start()

    try:
        yield start
    finally:
        for pool in pools:
            assert pool.stop(timeout=10), f"{pool} did not stop"


def polls_after(pool: WorkerPool, count: int) -> Callable[[], bool]:
    """A condition: the pool has polled ``count`` more times than now."""
    target = pool.status().polls + count
    return lambda: pool.status().polls >= target


def test_a_pool_works_jobs_then_stops_cleanly(start_pool, worker_db):
    for n in range(20):
        Record.enqueue(f"job-{n}")
    pool = start_pool(**FAST)
    row = worker_db.execute(
        "SELECT worker_count, worker_priorities, queues, listening, job_schema_version "
        "FROM que_lockers WHERE pid = %s",
        [pool.status().locker_pid],
    ).fetchone()
    assert row == (6, [10, 30, 50, None, None, None], ["default"], True, 2)
    wait_for(lambda: job_count(worker_db) == 0, what="every job to be worked")
    assert sorted(ledger(worker_db)) == sorted(f"job-{n}" for n in range(20))
    assert pool.stop(timeout=10)
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0
    assert not pool.running


def test_jobs_run_in_priority_order(start_pool, worker_db):
    for n, priority in enumerate([30, 10, 20, 10]):
        Record.enqueue(f"{priority}-{n}", job_options={"priority": priority})
    start_pool(worker_priorities=(None,), **FAST)
    wait_for(lambda: len(ledger(worker_db)) == 4)
    assert ledger(worker_db) == ["10-1", "10-3", "20-2", "30-0"]


def test_a_worker_takes_only_jobs_within_its_priority_threshold(start_pool, worker_db):
    urgent = Record.enqueue("urgent", job_options={"priority": 5})
    routine = Record.enqueue("routine", job_options={"priority": 100})
    pool = start_pool(worker_priorities=(10,), **FAST)
    wait_for(lambda: ledger(worker_db) == ["urgent"])
    wait_for(polls_after(pool, 3))
    assert ledger(worker_db) == ["urgent"]
    assert locked_ids(worker_db) == {routine.id}  # buffered, waiting for an "any" worker
    assert pool.stop(timeout=10)
    assert locked_ids(worker_db) == set()
    assert urgent.id not in {row["id"] for row in Que.jobs()}


def test_the_first_polls_serve_every_idle_worker_however_restrictive_the_first_one_is(
    start_pool, worker_db
):
    for n in range(10):
        Record.enqueue(f"job-{n}")  # priority 100: only the "any" worker takes them
    start_pool(
        worker_priorities=(5,) * 8 + (None,),
        maximum_buffer_size=0,
        minimum_buffer_size=0,
        poll_interval=10,
        wait_period=0.01,
    )
    wait_for(
        lambda: job_count(worker_db) == 0,
        timeout=5,
        what="every job to be worked well within the 10 s poll interval",
    )


def test_every_change_the_pool_makes_to_a_job_is_announced_on_que_state(
    start_pool, worker_db, que_database_url
):
    """A Ruby app listening on que_state hears of jobs worked here as of its own."""
    with psycopg.connect(que_database_url, autocommit=True) as listening:
        listening.execute("LISTEN que_state")
        jobs = {how: Resolve.enqueue(how).id for how in ("destroy", "finish", "expire")}
        jobs["fail"] = Fail.enqueue().id
        pool = start_pool(**FAST)
        wait_for(
            lambda: (
                scalar(
                    worker_db,
                    "SELECT count(*) FROM que_jobs WHERE error_count = 0 "
                    "AND finished_at IS NULL AND expired_at IS NULL",
                )
                == 0
            ),
            what="every job to be worked once",
        )
        assert pool.stop(timeout=10)
        changes = {}
        for notification in listening.notifies(timeout=1.0):
            message = json.loads(notification.payload)
            changes.setdefault(message["id"], []).append(
                (message["previous_state"], message["current_state"])
            )
    assert changes == {
        jobs["destroy"]: [("nonexistent", "ready"), ("ready", "nonexistent")],
        jobs["finish"]: [("nonexistent", "ready"), ("ready", "finished")],
        jobs["expire"]: [("nonexistent", "ready"), ("ready", "expired")],
        jobs["fail"]: [("nonexistent", "ready"), ("ready", "errored")],
    }


def test_an_announced_important_job_displaces_the_least_important_buffered_one(
    start_pool, worker_db
):
    pool = start_pool(
        worker_priorities=(10,), maximum_buffer_size=2, poll_interval=60, wait_period=0.01
    )
    with Que.transaction():
        first, second, third = (Record.enqueue(f"low-{n}") for n in range(3))
    wait_for(
        lambda: locked_ids(worker_db) == {first.id, second.id},
        what="the two most important low jobs to be buffered",
    )
    important = Record.enqueue("important", job_options={"priority": 50})
    wait_for(
        lambda: locked_ids(worker_db) == {first.id, important.id},
        what="the important job to displace the last buffered one",
    )
    assert ledger(worker_db) == []  # the only worker takes priorities up to 10
    assert pool.status().buffered == 2
    assert third.id not in locked_ids(worker_db)


def test_a_poll_skips_jobs_locked_by_another_session(start_pool, worker_db):
    held = Record.enqueue("held", job_options={"priority": 1})
    Record.enqueue("free", job_options={"priority": 2})
    worker_db.execute("SELECT pg_advisory_lock(%s)", [held.id])
    pool = start_pool(**FAST)
    wait_for(lambda: ledger(worker_db) == ["free"])
    wait_for(polls_after(pool, 3))
    assert ledger(worker_db) == ["free"]
    worker_db.execute("SELECT pg_advisory_unlock(%s)", [held.id])
    wait_for(lambda: ledger(worker_db) == ["free", "held"])


@pytest.mark.parametrize("pipeline", [True, False], ids=["pipelined", "no pipeline mode"])
def test_a_job_locked_after_it_was_worked_elsewhere_is_unlocked_and_skipped(
    que_database_url, worker_db, monkeypatch, pipeline
):
    if not pipeline:  # as with a libpq older than 14
        monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    gone = Record.enqueue("gone")
    later = Record.enqueue("later")
    ready = Record.enqueue("ready")
    Que.execute("DELETE FROM que_jobs WHERE id = %s", [gone.id])
    Que.execute("UPDATE que_jobs SET run_at = now() + interval '1 hour' WHERE id = %s", [later.id])
    held = Record.enqueue("held elsewhere")
    worker_db.execute("SELECT pg_advisory_lock(%s)", [held.id])
    with psycopg.connect(que_database_url, autocommit=True) as connection:
        rows = locks.lock_rows(connection, [gone.id, later.id, ready.id, held.id], None)
        assert [row["id"] for row in rows] == [ready.id]
        assert rows[0]["priority"] == 100 and set(rows[0]) == {"id", "priority", "run_at"}
        assert locked_ids(worker_db) == {ready.id, held.id}  # held: by worker_db only
        locks.unlock(connection, [ready.id])
    worker_db.execute("SELECT pg_advisory_unlock(%s)", [held.id])
    assert locked_ids(worker_db) == set()


WORKER_LOCK = (  # a worker's own lock on a job, as que._core.sql takes it
    "SELECT pg_advisory_lock((%(id)s::bigint >> 32)::integer, %(id)s::bigint::bit(32)::integer)"
)


def test_a_job_whose_worker_lock_is_held_elsewhere_is_neither_polled_nor_taken(
    que_database_url, worker_db
):
    running = Record.enqueue("running elsewhere")
    free = Record.enqueue("free")
    worker_db.execute(WORKER_LOCK, {"id": running.id})  # as a worker of another process
    with psycopg.connect(que_database_url, autocommit=True) as connection:
        announced = locks.lock_rows(connection, [running.id, free.id], None)
        assert [row["id"] for row in announced] == [free.id]
        locks.unlock(connection, [free.id])
        polled = poller.poll(connection, "default", Slots([ANY_PRIORITY] * 2), held=(), now=None)
        assert [row["id"] for row in polled.rows] == [free.id]
        assert locked_ids(worker_db) == {free.id}  # the running job's id lock was let go
        locks.unlock(connection, [free.id])
    worker_db.execute("SELECT pg_advisory_unlock_all()")


def test_a_worker_claims_a_job_and_reads_its_row_only_while_no_other_worker_holds_it(
    que_database_url, worker_db
):
    job = Record.enqueue("claimed", 0.5)
    worker_db.execute(WORKER_LOCK, {"id": job.id})
    with psycopg.connect(que_database_url) as connection:
        assert WorkerLock(job.id, None).claim(connection) is None
        connection.rollback()
        worker_db.execute("SELECT pg_advisory_unlock_all()")
        row = WorkerLock(job.id, None).claim(connection)
        assert row is not None and row["id"] == job.id
        assert json.loads(row["args"]) == ["claimed", 0.5]  # decoded by the runner
        other = WorkerLock(job.id, None)
        with psycopg.connect(que_database_url) as second:
            assert not other.reclaim(second)  # held for the rest of the transaction
        connection.rollback()
        with psycopg.connect(que_database_url) as second:
            assert other.reclaim(second)


def test_stopping_releases_buffered_jobs_at_once_and_lets_running_ones_finish(
    start_pool, worker_db, tmp_path
):
    blocker = Block.enqueue("blocker", str(tmp_path), job_options={"priority": 1})
    waiting = [Record.enqueue(f"waiting-{n}") for n in range(3)]
    pool = start_pool(worker_priorities=(None,), **FAST)
    wait_for((tmp_path / "blocker.started").exists)
    wait_for(lambda: locked_ids(worker_db) == {blocker.id, *(job.id for job in waiting)})
    pool.request_stop()
    wait_for(lambda: locked_ids(worker_db) == {blocker.id}, what="buffered jobs released")
    assert pool.running and pool.running_job_ids() == [blocker.id]
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0
    (tmp_path / "blocker.release").touch()
    assert pool.join(timeout=10)
    assert ledger(worker_db) == ["blocker"]
    assert job_count(worker_db) == 3


def test_a_terminated_worker_connection_loses_no_job(start_pool, worker_db, tmp_path):
    job = Block.enqueue("victim", str(tmp_path))
    pool = start_pool(worker_priorities=(None,), **FAST)
    started = tmp_path / "victim.started"
    wait_for(lambda: started.exists() and started.read_text())
    backend = int(started.read_text())
    assert backend != pool.status().locker_pid
    worker_db.execute("SELECT pg_terminate_backend(%s)", [backend])
    (tmp_path / "victim.release").touch()
    wait_for(lambda: ledger(worker_db) == ["victim"], what="the job to run again")
    wait_for(lambda: job_count(worker_db) == 0)
    assert job.id not in locked_ids(worker_db)


def test_a_connection_error_of_the_jobs_own_connection_is_the_jobs_error(start_pool, worker_db):
    """Only que's connection breaking means "nothing was recorded, run it again"."""
    job = ConnectsNowhere.enqueue()
    start_pool(**FAST)
    wait_for(
        lambda: scalar(worker_db, "SELECT error_count FROM que_jobs WHERE id = %s", [job.id]) == 1,
        what="the failure to be recorded",
    )
    message = scalar(worker_db, "SELECT last_error_message FROM que_jobs WHERE id = %s", [job.id])
    assert message.startswith("OperationalError: connection"), message


def test_async_mode_starts_and_stops_the_in_process_pool(worker_db):
    previous = inprocess.settings()
    inprocess.configure(worker_priorities=(None, None), **FAST)
    try:
        pool = inprocess.start()
        assert inprocess.start() is pool  # once per process
        assert inprocess.current() is pool
        Record.enqueue("async")
        wait_for(lambda: ledger(worker_db) == ["async"])
        assert inprocess.stop(timeout=10)
        assert inprocess.current() is None and not pool.running
        assert inprocess.stop()  # nothing to stop
    finally:
        inprocess.stop(timeout=10)
        inprocess.configure(previous)


def test_que_mode_async_runs_the_pool_and_off_stops_it(worker_db):
    previous = inprocess.settings()
    inprocess.configure(worker_priorities=(None,), **FAST)
    try:
        Que.mode = "async"
        pool = inprocess.current()
        assert pool is not None and pool.running
        Record.enqueue("via mode")
        wait_for(lambda: ledger(worker_db) == ["via mode"])
        Que.mode = "off"
        assert inprocess.current() is None and not pool.running
    finally:
        Que.mode = "off"
        inprocess.configure(previous)


def test_que_mode_async_that_cannot_start_stays_off(worker_db):
    previous = inprocess.settings()
    inprocess.configure(connection_url="host=127.0.0.1 port=1 connect_timeout=1")
    try:
        with pytest.raises(psycopg.OperationalError):
            Que.mode = "async"
        assert Que.mode == "off" and inprocess.current() is None
    finally:
        inprocess.configure(previous)


def test_the_pool_follows_the_test_clock_under_time_travel(start_pool, worker_db):
    from freezegun import freeze_time

    from que_testing.timetravel import wall_clock

    Que.clock = wall_clock  # worker_db puts the database clock back afterwards
    # que.worker must not be ignored here: the poll reads the job clock.
    with freeze_time(ignore=["psycopg", "psycopg_pool", "worker_fixtures"]) as frozen:
        Record.enqueue("later", job_options={"run_at": timedelta(seconds=60)})
        pool = start_pool(**FAST)
        wait_for(polls_after(pool, 3))
        assert ledger(worker_db) == []
        frozen.tick(timedelta(seconds=61))
        wait_for(lambda: ledger(worker_db) == ["later"], what="the job to become ready")


def test_at_interpreter_exit_the_in_process_pool_finishes_running_jobs(que_database_url, worker_db):
    result = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("worker_async_app.py")),
            que_database_url,
            "finished-at-exit",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "exiting with the job running\n"
    assert ledger(worker_db) == ["finished-at-exit"]
    assert job_count(worker_db) == 0
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0


def test_a_pool_that_cannot_connect_raises_and_starts_nothing(worker_db):
    pool = WorkerPool(PoolSettings(connection_url="postgresql://postgres@127.0.0.1:1/nowhere"))
    with pytest.raises(psycopg.OperationalError):
        pool.start()
    assert not pool.running
    assert pool.stop(timeout=1)


def test_a_pool_starts_once(start_pool, worker_db):
    pool = start_pool(**FAST)
    with pytest.raises(ConfigurationError, match="make a new WorkerPool"):
        pool.start()
    assert pool.running


class StopsThePool(Record, name="test_worker_pool.StopsThePool"):
    def run(self, key: str, sleep: float = 0.0) -> None:
        assert inprocess.stop(timeout=5) is False  # it cannot wait for itself
        super().run(key)


def test_a_job_can_stop_the_in_process_pool(worker_db):
    previous = inprocess.settings()
    inprocess.configure(worker_priorities=(None,), **FAST)
    try:
        pool = inprocess.start()
        StopsThePool.enqueue("stopper")
        assert pool.join(timeout=10)
        assert ledger(worker_db) == ["stopper"]
        assert inprocess.stop()
        assert inprocess.current() is None
    finally:
        inprocess.stop(timeout=10)
        inprocess.configure(previous)


@pytest.mark.timing
def test_a_job_announced_while_the_locker_runs_a_statement_starts_at_once(
    start_pool, worker_db, que_database_url
):
    # psycopg reads a notification that arrives during a statement along with
    # the statement's results, and select() on the socket no longer sees it:
    # unless the locker reads notifications after its last statement, such a
    # job waits for the next wake, here a wait period of two seconds.
    announced_at: list[float] = []

    def announce_during_unlock(statement, params, call_next):
        if statement is sql.UNLOCK_JOBS and not announced_at:
            with psycopg.connect(que_database_url, autocommit=True) as other, Que.using(other):
                Record.enqueue("during the unlock")
            announced_at.append(time.monotonic())
        call_next()

    start_pool(poll_interval=60, wait_period=2)
    Record.enqueue("first")  # its lock is released by the next settle, within 2 s
    wait_for(lambda: ledger(worker_db) == ["first"])
    Que.sql_middleware.append(announce_during_unlock)
    try:
        wait_for(lambda: len(ledger(worker_db)) == 2, timeout=5, what="the second job")
    finally:
        Que.sql_middleware.remove(announce_during_unlock)
    assert time.monotonic() - announced_at[0] < 1.0
