"""Hostile rows, classes and payloads: each fails only itself, and every good job is done."""

from __future__ import annotations

import json
import signal
import time

from fault_jobs import Ledger
from ledger import reset, tally
from psycopg.rows import dict_row
from test_lost_connections import FAULT_JOBS
from worker_fixtures import scalar, wait_for

DEEP_ARGS = "[" * 3000 + "]" * 3000

# job_class -> what its recorded error says
BAD_CLASSES = {
    ".X": "UnknownJobClass: no job class named '.X'",
    ".x.Y": "UnknownJobClass: no job class named '.x.Y'",
    "this.Anything": "UnknownJobClass: no job class named 'this.Anything'",
    "fault_modules.raises.Job": "importing 'fault_modules.raises' raised RuntimeError",
    "fault_modules.exits.Job": "importing 'fault_modules.exits' raised SystemExit: 4",
    "fault_modules.syntax_error.Job": "importing 'fault_modules.syntax_error' raised SyntaxError",
}
RAISED = {
    "SystemExit": "JobExited: the job raised SystemExit: 3",
    "KeyboardInterrupt": "JobExited: the job raised KeyboardInterrupt",
    "BaseException": "JobExited: the job raised BaseException: bare",
    "Unstorable": "ValueError: NUL \ufffd, lone surrogate \ufffd",
}
INSERT = """
INSERT INTO que_jobs (job_class, args, run_at, error_count, job_schema_version)
VALUES (%s, %s::jsonb, %s::timestamptz, %s, 2) RETURNING id
"""


def recorded(connection):
    """The jobs left, without their arguments (which the test cannot decode either)."""
    cursor = connection.cursor(row_factory=dict_row)
    return {
        row["id"]: row
        for row in cursor.execute(
            "SELECT id, error_count, expired_at, last_error_message FROM que_jobs"
        )
    }


def test_bad_rows_and_payloads_fail_only_themselves(que_processes, worker_db):
    reset(worker_db)

    def insert(job_class, args="[]", run_at="now", error_count=0):
        return scalar(worker_db, INSERT, [job_class, args, run_at, error_count])

    bad = {insert(job_class): message for job_class, message in BAD_CLASSES.items()}
    bad[insert("fault_jobs.Ledger", DEEP_ARGS)] = "RecursionError: maximum recursion depth"
    for what, message in RAISED.items():
        bad[insert("fault_jobs.Raises", json.dumps([what]))] = message
    saturated = insert("fault_jobs.Raises", '["SystemExit"]', error_count=2**31 - 1)
    keys = [f"good-{n}" for n in range(50)]
    insert("fault_jobs.Ledger", '["minus-infinity"]', run_at="-infinity")
    process = que_processes("-w", "3", "-i", "0.2", modules=(FAULT_JOBS,))
    locker = process.wait_ready(worker_db)
    channel = f"que_listener_{locker}"
    for payload in (
        json.dumps(
            {
                "message_type": "job_available",
                "queue": "default",
                "priority": 1,
                "id": 2**63,
                "run_at": "2026-01-01T00:00:00Z",
            }
        ),
        "not json",
        "[]",
        json.dumps({"message_type": "job_available", "id": -1}),
    ):
        worker_db.execute("SELECT pg_notify(%s, %s)", [channel, payload])
    for key in keys:
        Ledger.enqueue(key)
    wait_for(lambda: tally(worker_db, keys, []).done == len(keys), what="every good job")
    wait_for(
        lambda: (
            scalar(worker_db, "SELECT count(*) FROM fault_ledger WHERE key = 'minus-infinity'") == 1
        ),
        what="the job scheduled at -infinity",
    )
    wait_for(
        lambda: all(row["last_error_message"] for row in recorded(worker_db).values()),
        what="every bad row's error to be recorded",
    )
    time.sleep(2)  # a tight loop would count many errors by now; a back-off counts one
    rows = recorded(worker_db)
    for job_id, message in bad.items():
        row = rows[job_id]
        assert message in row["last_error_message"], row
        assert row["error_count"] == 1 and row["expired_at"] is None, row
    assert rows[saturated]["error_count"] == 2**31 - 1
    assert rows[saturated]["expired_at"] is not None  # past maximum_retry_count: expired
    assert "The Zen of Python" not in process.stdout()  # `this` was never imported
    assert len(process.events("notification_invalid")) == 4
    assert process.events("locker_connection_lost") == []
    assert process.events("worker_error") == []
    assert process.popen.poll() is None  # still working
    process.signal(signal.SIGTERM)
    assert process.wait() == 0, process.stderr()
