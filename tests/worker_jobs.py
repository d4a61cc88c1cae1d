"""Job classes for the worker pool tests, imported by the test process and by `que` processes.

Each job writes its effect to the ``worker_ledger`` table inside the job's own
transaction, so a job that is rolled back leaves no trace there, and the
unique key catches a job whose effect would happen twice.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

from que import Job, Que

BLOCK_TIMEOUT = 30.0  # seconds a Block job waits for its release file before failing

LEDGER_TABLE = """
CREATE TABLE IF NOT EXISTS worker_ledger (
  key       text PRIMARY KEY,
  pid       integer NOT NULL,
  seq       bigserial,
  worked_at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


def record(key: str) -> None:
    Que.execute("INSERT INTO worker_ledger (key, pid) VALUES (%s, %s)", [key, os.getpid()])


class Record(Job, name="worker_jobs.Record"):
    """Record ``key`` in the ledger (after ``sleep`` seconds)."""

    def run(self, key: str, sleep: float = 0.0) -> None:
        if sleep:
            time.sleep(sleep)
        record(key)


class Block(Job, name="worker_jobs.Block"):
    """Say it started (a file naming its connection's backend pid), wait until the
    test releases it (another file), record ``key``."""

    def run(self, key: str, directory: str) -> None:
        (backend,) = Que.execute("SELECT pg_backend_pid() AS pid")
        Path(directory, f"{key}.started").write_text(str(backend["pid"]))
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while not Path(directory, f"{key}.release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {key!r} was never released")
            time.sleep(0.01)
        record(key)


class Fail(Job, name="worker_jobs.Fail"):
    """Always fails."""

    def run(self) -> None:
        raise RuntimeError("this job always fails")


class Resolve(Job, name="worker_jobs.Resolve"):
    """Resolve itself as told: "finish", "expire", or the default destroy."""

    def run(self, how: str) -> None:
        if how == "finish":
            self.finish()
        elif how == "expire":
            self.expire()


class ConnectsNowhere(Job, name="worker_jobs.ConnectsNowhere"):
    """Fails with a connection error of a connection it opens itself, not que's."""

    def run(self) -> None:
        psycopg.connect("host=127.0.0.1 port=1 dbname=nowhere connect_timeout=2").close()
