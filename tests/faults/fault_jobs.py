"""Job classes for the fault suite, imported by the test process and by `que` processes.

Every job keeps two ledgers. ``fault_ledger`` (a unique key) is written in the
job's own transaction, so it holds exactly the work that committed: a second
commit of the same job would violate the key. ``fault_attempts`` is written on
a separate autocommit connection as each attempt starts and ends, so it keeps
attempts that rolled back too: two attempts of one key whose times overlap in
two processes are a job that ran twice at the same moment.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import psycopg

from que import Job, Que

SCHEMA = """
CREATE TABLE IF NOT EXISTS fault_ledger (
  key text PRIMARY KEY,
  pid integer NOT NULL
);
CREATE TABLE IF NOT EXISTS fault_attempts (
  id         bigserial PRIMARY KEY,
  key        text NOT NULL,
  pid        integer NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  ended_at   timestamptz
);
"""
ATTEMPTS_APPLICATION_NAME = "fault-attempts"  # never a backend the fault suite terminates

# A row may name a class in these modules, which the worker imports on demand.
Que.job_module_prefixes = ["fault_modules"]

_local = threading.local()


def _attempts_connection() -> psycopg.Connection[Any]:
    connection: psycopg.Connection[Any] | None = getattr(_local, "connection", None)
    if connection is None or connection.closed:
        # FAULT_ATTEMPTS_URL: another way to the same database, for a process
        # whose own (DATABASE_URL) the test cuts off.
        url = os.environ.get("FAULT_ATTEMPTS_URL") or os.environ["DATABASE_URL"]
        connection = psycopg.connect(
            url, autocommit=True, application_name=ATTEMPTS_APPLICATION_NAME
        )
        _local.connection = connection
    return connection


class Ledger(Job, name="fault_jobs.Ledger"):
    """Record ``key`` in both ledgers and destroy itself in the same transaction."""

    def run(self, key: str, sleep: float = 0.0) -> None:
        attempts = _attempts_connection()
        row = attempts.execute(
            "INSERT INTO fault_attempts (key, pid) VALUES (%s, %s) RETURNING id",
            [key, os.getpid()],
        ).fetchone()
        assert row is not None
        try:
            Que.execute("INSERT INTO fault_ledger (key, pid) VALUES (%s, %s)", [key, os.getpid()])
            if sleep:
                time.sleep(sleep)
            self.destroy()
        finally:
            attempts.execute(
                "UPDATE fault_attempts SET ended_at = clock_timestamp() WHERE id = %s", [row[0]]
            )


class Raises(Job, name="fault_jobs.Raises"):
    """Raises what it is told to: ``SystemExit``, ``KeyboardInterrupt``, ``BaseException``,
    or an error whose message PostgreSQL cannot store as it is."""

    def run(self, what: str) -> None:
        raised = {
            "SystemExit": SystemExit(3),
            "KeyboardInterrupt": KeyboardInterrupt(),
            "BaseException": BaseException("bare"),
            "Unstorable": ValueError("NUL \x00, lone surrogate \udc80"),
        }[what]
        raise raised
