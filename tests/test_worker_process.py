"""Real `que` processes against the real test database: working, signals, faults."""

from __future__ import annotations

import signal
import time

import pytest
from worker_fixtures import job_count, ledger, locked_ids, scalar, wait_for
from worker_jobs import Block, Record

from que import Que


def stop(process, expected_code=0):
    process.signal(signal.SIGTERM)
    assert process.wait() == expected_code, process.stderr()


def test_a_process_works_jobs_by_priority_from_its_queues_only(que_processes, worker_db):
    for priority in (30, 10, 20):
        Record.enqueue(f"default-{priority}", job_options={"priority": priority})
    Record.enqueue("other-5", job_options={"queue": "other", "priority": 5})
    Record.enqueue("elsewhere", job_options={"queue": "elsewhere"})
    process = que_processes("-w", "1", "-q", "default", "-q", "other")
    wait_for(lambda: len(ledger(worker_db)) == 4, what="the jobs of both queues")
    worked = ledger(worker_db)
    assert [key for key in worked if key.startswith("default")] == [
        "default-10",
        "default-20",
        "default-30",
    ]
    assert "other-5" in worked
    stop(process)
    assert [row["args"] for row in Que.jobs()] == [["elsewhere"]]
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0
    assert process.events("worker_pool_stopped")


def test_each_queue_is_polled_at_its_own_interval_without_listen(que_processes, worker_db):
    process = que_processes(
        "-i", "60", "--listen", "false", "-q", "fast=0.1", "-q", "slow", "--log-internals"
    )
    assert (
        scalar(worker_db, "SELECT listening FROM que_lockers WHERE ruby_pid = %s", [process.pid])
        is False
    )
    wait_for(
        lambda: [e for e in process.events("poll") if e["queue"] == "slow"],
        what="the first poll of the slow queue",
    )
    Record.enqueue("slow", job_options={"queue": "slow"})
    Record.enqueue("fast-1", job_options={"queue": "fast"})
    wait_for(lambda: "fast-1" in ledger(worker_db), what="the fast queue's poll")
    Record.enqueue("fast-2", job_options={"queue": "fast"})
    wait_for(lambda: "fast-2" in ledger(worker_db), what="the fast queue's next poll")
    assert "slow" not in ledger(worker_db)  # polled at start, next in 60 s
    stop(process)


@pytest.mark.timing
def test_a_new_job_is_announced_and_starts_within_a_second(que_processes, worker_db):
    process = que_processes("--poll-interval", "60")
    Record.enqueue("first")
    wait_for(lambda: ledger(worker_db) == ["first"], timeout=5)
    started = time.monotonic()
    Record.enqueue("announced")  # the next poll is a minute away
    wait_for(
        lambda: ledger(worker_db) == ["first", "announced"],
        timeout=1.0,
        what="the announced job to be worked",
    )
    assert time.monotonic() - started < 1.0
    stop(process)


def test_sigterm_releases_buffered_jobs_at_once_and_finishes_the_running_one(
    que_processes, worker_db, tmp_path
):
    blocker = Block.enqueue("blocker", str(tmp_path), job_options={"priority": 1})
    waiting = {Record.enqueue(f"waiting-{n}").id for n in range(3)}
    process = que_processes("-w", "1")
    locker_pid = process.wait_ready(worker_db)
    wait_for((tmp_path / "blocker.started").exists, what="the blocking job to start")
    wait_for(lambda: locked_ids(worker_db) == {blocker.id, *waiting})
    process.signal(signal.SIGTERM)
    wait_for(lambda: locked_ids(worker_db) == {blocker.id}, what="buffered jobs released")
    assert process.popen.poll() is None  # still running the blocking job
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers WHERE pid = %s", [locker_pid]) == 0
    taken = min(waiting)  # another session can take a released job at once
    assert scalar(worker_db, "SELECT pg_try_advisory_lock(%s)", [taken]) is True
    assert scalar(worker_db, "SELECT pg_advisory_unlock(%s)", [taken]) is True
    (tmp_path / "blocker.release").touch()
    assert process.wait() == 0, process.stderr()
    assert ledger(worker_db) == ["blocker"]
    assert {row["id"] for row in Que.jobs()} == waiting
    released = process.events("jobs_released")
    assert released and set(released[0]["job_ids"]) == waiting


def test_sigkill_leaves_the_running_job_to_another_process(que_processes, worker_db, tmp_path):
    job = Block.enqueue("killed", str(tmp_path))
    first = que_processes("-w", "1")
    first_locker = first.wait_ready(worker_db)
    wait_for((tmp_path / "killed.started").exists)
    first.popen.kill()
    assert first.wait() == -signal.SIGKILL
    wait_for(lambda: job.id not in locked_ids(worker_db), what="Postgres to release the lock")
    assert ledger(worker_db) == [] and job_count(worker_db) == 1
    (tmp_path / "killed.release").touch()
    second = que_processes("-w", "1")
    wait_for(lambda: ledger(worker_db) == ["killed"], what="the second process to run it")
    wait_for(lambda: job_count(worker_db) == 0)
    assert (
        scalar(worker_db, "SELECT count(*) FROM que_lockers WHERE pid = %s", [first_locker]) == 0
    )  # the dead locker's row was cleaned up
    stop(second)


def test_the_shutdown_timeout_abandons_a_running_job_uncommitted(
    que_processes, worker_db, tmp_path
):
    job = Block.enqueue("slow", str(tmp_path))
    process = que_processes("-w", "1", "--shutdown-timeout", "0.3")
    wait_for((tmp_path / "slow.started").exists)
    process.signal(signal.SIGTERM)
    assert process.wait() == 1
    assert process.events("hard_stop")[0]["running_job_ids"] == [job.id]
    wait_for(lambda: job.id not in locked_ids(worker_db))
    assert ledger(worker_db) == []
    assert [(row["id"], row["error_count"]) for row in Que.jobs()] == [(job.id, 0)]


def test_a_second_signal_stops_at_once(que_processes, worker_db, tmp_path):
    job = Block.enqueue("stuck", str(tmp_path))
    process = que_processes("-w", "1")
    wait_for((tmp_path / "stuck.started").exists)
    process.signal(signal.SIGTERM)
    wait_for(lambda: process.events("worker_pool_stopping"))
    process.signal(signal.SIGINT)
    assert process.wait() == 1
    wait_for(lambda: job.id not in locked_ids(worker_db))
    assert ledger(worker_db) == [] and job_count(worker_db) == 1


def test_two_processes_work_2000_jobs_exactly_once(que_processes, worker_db):
    first = que_processes("-w", "4", "-i", "0.5")
    second = que_processes("-w", "4", "-i", "0.5")
    with Que.bulk_enqueue(notify=True):
        for n in range(2000):
            Record.enqueue(f"job-{n}")
    wait_for(lambda: job_count(worker_db) == 0, timeout=60, interval=0.1, what="the queue to drain")
    assert scalar(worker_db, "SELECT count(*) FROM worker_ledger") == 2000
    pids = {row[0] for row in worker_db.execute("SELECT DISTINCT pid FROM worker_ledger")}
    assert pids == {first.pid, second.pid}
    stop(first)
    stop(second)
    for process in (first, second):
        assert process.events("job_errored") == []
        assert process.events("worker_error") == []


def test_a_terminated_lock_connection_is_replaced_and_no_job_is_lost(que_processes, worker_db):
    with Que.bulk_enqueue():
        for n in range(300):
            Record.enqueue(f"job-{n}", 0.002)
    process = que_processes("-w", "2", "-i", "0.2")
    locker_pid = process.wait_ready(worker_db)
    wait_for(lambda: scalar(worker_db, "SELECT count(*) FROM worker_ledger") >= 30)
    worker_db.execute("SELECT pg_terminate_backend(%s)", [locker_pid])
    wait_for(lambda: job_count(worker_db) == 0, timeout=30, what="the queue to drain")
    assert scalar(worker_db, "SELECT count(*) FROM worker_ledger") == 300
    assert process.events("locker_connection_lost")
    assert process.events("locker_reconnected")
    assert process.wait_ready(worker_db) != locker_pid
    stop(process)
    assert process.events("job_errored") == []
