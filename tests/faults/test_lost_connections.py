"""Backends terminated under load: nothing lost, nothing committed twice, nothing run at once."""

from __future__ import annotations

import random
import time
from typing import Any

import psycopg
from ledger import enqueue, reset, tally
from worker_fixtures import all_events, job_count, stop_processes, wait_for

FAULT_JOBS = "tests/faults/fault_jobs.py"

QUE_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid()
"""


def terminate_one(connection: psycopg.Connection[Any], application_name: str) -> bool:
    pids = [row[0] for row in connection.execute(QUE_BACKENDS, [application_name])]
    if not pids:
        return False
    connection.execute("SELECT pg_terminate_backend(%s)", [random.choice(pids)])
    return True


def test_terminated_locker_and_worker_backends_lose_nothing_and_commit_nothing_twice(
    que_processes, worker_db
):
    reset(worker_db)
    keys = enqueue(3000, 0.001)
    processes = [que_processes("-w", "4", "-i", "0.2", modules=(FAULT_JOBS,)) for _ in range(3)]
    terminated = {"que-locker": 0, "que-worker": 0}
    while min(terminated.values()) < 13 and job_count(worker_db) > 300:
        for application_name in terminated:
            terminated[application_name] += terminate_one(worker_db, application_name)
            time.sleep(0.05)
    wait_for(lambda: job_count(worker_db) == 0, timeout=60, interval=0.1, what="the queue to drain")
    codes = stop_processes(processes)
    events = all_events(processes)
    result = tally(worker_db, keys, events)
    lock_lost = {
        job_id
        for event in events
        if event["event"] == "job_lock_lost"
        for job_id in event["job_ids"]
    }
    print(result, terminated, f"job_lock_lost={len(lock_lost)}")
    assert codes == [0, 0, 0]
    assert min(terminated.values()) >= 10, terminated
    assert (result.lost, result.duplicated, result.stuck) == (0, 0, 0), result
    assert result.concurrent == 0, result
    assert result.done == len(keys)
