"""Fixtures and helpers for the worker pool tests: `que` subprocesses, the ledger, waiting.

Test modules import the fixtures they use from here by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from worker_jobs import LEDGER_TABLE

from que import Que
from que._core.config import database_clock

REPO = Path(__file__).resolve().parent.parent
JOBS_FILE = "tests/worker_jobs.py"
PROCESS_EXIT_TIMEOUT = 20.0  # seconds

T = TypeVar("T")

ADVISORY_LOCKS = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "the condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def scalar(connection: psycopg.Connection[Any], statement: str, params: Any = None) -> Any:
    row = connection.execute(statement, params).fetchone()
    assert row is not None
    return row[0]


def ledger(connection: psycopg.Connection[Any]) -> list[str]:
    """Keys recorded by jobs, in the order their transactions inserted them."""
    return [row[0] for row in connection.execute("SELECT key FROM worker_ledger ORDER BY seq")]


def job_count(connection: psycopg.Connection[Any]) -> int:
    return int(scalar(connection, "SELECT count(*) FROM que_jobs"))


def locked_ids(connection: psycopg.Connection[Any]) -> set[int]:
    """Job ids some session holds an advisory lock on."""
    rows = connection.execute(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    return {row[0] for row in rows}


class QueProcess:
    """A `que` command run by a test, its stdout and stderr kept in files."""

    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        directory: Path,
        name: str,
        prefix: Sequence[str] = (),
    ) -> None:
        """``prefix``: a command that execs the rest in place (``ip netns exec NS``),
        so that the process's pid is still the que command's."""
        self.args = args
        self.stdout_path = directory / f"{name}.stdout"
        self.stderr_path = directory / f"{name}.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                [*prefix, sys.executable, "-m", "que.cli", *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    def __repr__(self) -> str:
        return f"<que process {self.pid} {self.args}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def events(self, event: str | None = None) -> list[dict[str, Any]]:
        """The JSON log events printed so far (only ``event`` ones, if given)."""
        found = []
        for line in self.stdout().splitlines():
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and (event is None or data.get("event") == event):
                found.append(data)
        return found

    def wait_ready(self, connection: psycopg.Connection[Any]) -> int:
        """Wait for the process's que_lockers row; return the locker's backend pid."""

        def registered() -> int | None:
            if self.popen.poll() is not None:
                raise AssertionError(f"{self} exited with {self.popen.returncode}: {self.stderr()}")
            row = connection.execute(
                "SELECT pid FROM que_lockers WHERE ruby_pid = %s", [self.pid]
            ).fetchone()
            return None if row is None else int(row[0])

        return wait_for(registered, what=f"{self} to register its locker")

    def signal(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float = PROCESS_EXIT_TIMEOUT) -> int:
        return self.popen.wait(timeout)


def stop_processes(processes: list[QueProcess]) -> list[int]:
    """SIGTERM every process at once, then wait for each; their exit codes."""
    for process in processes:
        process.signal(signal.SIGTERM)
    return [process.wait() for process in processes]


def all_events(processes: list[QueProcess]) -> list[dict[str, Any]]:
    """Every JSON event the processes logged, for ``ledger.tally``."""
    return [event for process in processes for event in process.events()]


@pytest.fixture(scope="session")
def _worker_ledger_table(que_database_url: str) -> None:
    with psycopg.connect(que_database_url, autocommit=True) as connection:
        connection.execute(LEDGER_TABLE)


@pytest.fixture
def worker_db(
    que_committed_db: Any, que_database_url: str, _worker_ledger_table: None
) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for looking at the database while workers run.

    Empties the ledger and que_lockers first; afterwards (once the fixtures that
    depend on this one have stopped their workers) checks that no advisory lock
    is left anywhere in the test database. Jobs get their times from the
    database, as in production: with a Python clock, a job enqueued inside a
    transaction looks scheduled to the notify trigger (its run_at is later than
    the transaction's now()) and would only be found by polling.
    """
    previous_clock = Que.clock
    Que.clock = database_clock
    with psycopg.connect(que_database_url, autocommit=True) as connection:
        connection.execute("TRUNCATE worker_ledger")
        connection.execute("DELETE FROM que_lockers")
        yield connection
        wait_for(
            lambda: scalar(connection, ADVISORY_LOCKS) == 0,
            timeout=5,
            what="every advisory lock to be released",
        )
        connection.execute("DELETE FROM que_lockers")
    Que.clock = previous_clock


@contextmanager
def que_process_starter(
    database_url: str, connection: psycopg.Connection[Any], directory: Path
) -> Iterator[Callable[..., QueProcess]]:
    """Start `que` processes (``-m que.cli``) on ``database_url``, waiting for each to
    register through ``connection``; kill those still running at the end of the block."""
    started: list[QueProcess] = []
    env = {**os.environ, "DATABASE_URL": database_url}

    def start(
        *args: str,
        modules: tuple[str, ...] = (JOBS_FILE,),
        ready: bool = True,
        extra_env: dict[str, str] | None = None,
        prefix: Sequence[str] = (),
    ) -> QueProcess:
        process = QueProcess(
            [*args, *modules],
            env={**env, **(extra_env or {})},
            directory=directory,
            name=f"que-{len(started) + 1}",
            prefix=prefix,
        )
        started.append(process)
        if ready:
            process.wait_ready(connection)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.popen.poll() is None:
                process.popen.kill()
            process.popen.wait(PROCESS_EXIT_TIMEOUT)


@pytest.fixture
def que_processes(
    worker_db: psycopg.Connection[Any], que_database_url: str, tmp_path: Path
) -> Iterator[Callable[..., QueProcess]]:
    """Start `que` processes (``-m que.cli``) on the test database; killed after the test."""
    with que_process_starter(que_database_url, worker_db, tmp_path) as start:
        yield start
