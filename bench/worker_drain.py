"""Drain rate of the worker pool: N no-op jobs enqueued up front, worked as fast as possible.

    python bench/worker_drain.py                 # N = 10000, a `que` process, 6 workers
    python bench/worker_drain.py -n 50000 -w 10
    python bench/worker_drain.py --in-process    # a WorkerPool in this process instead
    python bench/worker_drain.py --database-url postgresql://user@host/db

Without --database-url it creates (once) and uses the database ``que_bench`` on
127.0.0.1:5432 as user postgres. It deletes every job in that database first.
Prints jobs per second from the moment the workers are registered until the
queue is empty.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from que import Job, Que

DEFAULT_DATABASE_URL = "host=127.0.0.1 port=5432 user=postgres dbname=que_bench"
ENQUEUE_BATCH = 5000  # jobs per bulk insert


class Noop(Job, name="bench.Noop"):
    """Does nothing; the default resolve action destroys it."""

    def run(self, *args: Any) -> None:
        pass


def prepare_database(url: str | None) -> str:
    """The database to use, created and migrated if it is the default scratch one."""
    if url is None:
        url = DEFAULT_DATABASE_URL
        maintenance = make_conninfo(url, dbname="postgres")
        with psycopg.connect(maintenance, autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = 'que_bench'"
            ).fetchone()
            if not exists:
                connection.execute("CREATE DATABASE que_bench")
    with psycopg.connect(url) as connection, Que.using(connection):
        Que.migrate()
        connection.execute("DELETE FROM que_jobs")
        connection.execute("DELETE FROM que_lockers")
    return url


def enqueue(count: int) -> None:
    for start in range(0, count, ENQUEUE_BATCH):
        with Que.bulk_enqueue():
            for n in range(start, min(count, start + ENQUEUE_BATCH)):
                Noop.enqueue(n)


def remaining(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM que_jobs").fetchone()
    assert row is not None
    return int(row[0])


def wait_until_empty(connection: psycopg.Connection[Any], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while remaining(connection):
        if time.monotonic() > deadline:
            raise SystemExit(f"the queue did not drain in {timeout}s")
        time.sleep(0.01)
    return time.monotonic()


def drain_with_process(url: str, count: int, workers: int, timeout: float) -> float:
    here = Path(__file__).resolve()
    command = [
        sys.executable,
        "-m",
        "que.cli",
        "-w",
        str(workers),
        "-l",
        "warn",
        "--connection-url",
        url,
        str(here),
    ]
    with psycopg.connect(url, autocommit=True) as watcher:
        process = subprocess.Popen(command, cwd=here.parent, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not watcher.execute(
                "SELECT 1 FROM que_lockers WHERE ruby_pid = %s", [process.pid]
            ).fetchone():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the que process did not start")
                time.sleep(0.005)
            started = time.monotonic()
            finished = wait_until_empty(watcher, timeout)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    return finished - started


def drain_in_process(url: str, count: int, workers: int, timeout: float) -> float:
    from que.worker import PoolSettings, WorkerPool

    settings = PoolSettings(worker_priorities=(None,) * workers, connection_url=url)
    with psycopg.connect(url, autocommit=True) as watcher:
        pool = WorkerPool(settings).start()
        started = time.monotonic()
        try:
            finished = wait_until_empty(watcher, timeout)
        finally:
            pool.stop()
    return finished - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a scratch database que_bench")
    parser.add_argument("-n", type=int, default=10_000, help="jobs (default 10000)")
    parser.add_argument("-w", "--workers", type=int, default=6, help="workers (default 6)")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run a WorkerPool in this process instead of a `que` process",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    args = parser.parse_args()
    url = prepare_database(args.database_url)
    with ConnectionPool(url, min_size=1, max_size=args.workers + 2, open=True) as pool:
        Que.connection = pool
        enqueue(args.n)
        run = drain_in_process if args.in_process else drain_with_process
        elapsed = run(url, args.n, args.workers, args.timeout)
        Que.connection = None
    where = "in-process pool" if args.in_process else "que process"
    print(
        f"drained {args.n} no-op jobs with {args.workers} workers ({where}) in "
        f"{elapsed:.2f}s: {args.n / elapsed:,.0f} jobs/s  [python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs]"
    )


if __name__ == "__main__":
    main()
