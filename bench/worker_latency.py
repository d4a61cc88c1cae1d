"""Enqueue-to-start latency on an idle worker: one job at a time, N times.

    python bench/worker_latency.py               # N = 200, a `que` process (poll interval 5 s)
    python bench/worker_latency.py -n 1000
    python bench/worker_latency.py --listen false -i 0.1   # without LISTEN/NOTIFY
    python bench/worker_latency.py --database-url postgresql://user@host/db

Each job records, in its own transaction, the database's clock_timestamp() when
it starts; latency is that minus the job's run_at (the enqueueing statement's
now(), same clock). Without --database-url it uses the scratch database
``que_bench`` on 127.0.0.1:5432 (created once), deleting every job in it first.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from que import Job, Que

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worker_drain import prepare_database

LATENCY_TABLE = """
CREATE TABLE IF NOT EXISTS que_bench_latency (
  job_id     bigint PRIMARY KEY,
  run_at     timestamptz NOT NULL,
  started_at timestamptz NOT NULL
)
"""


class Stamp(Job, name="bench.Stamp"):
    """Record when it started, next to when it was due."""

    def run(self) -> None:
        Que.execute(
            "INSERT INTO que_bench_latency (job_id, run_at, started_at) "
            "VALUES (%s, %s, clock_timestamp())",
            [self.id, self.attrs["run_at"]],
        )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a scratch database que_bench")
    parser.add_argument("-n", type=int, default=200, help="jobs (default 200)")
    parser.add_argument("-i", "--poll-interval", default="5", help="seconds (default 5)")
    parser.add_argument("--listen", default="true", help="true or false (default true)")
    args = parser.parse_args()
    url = prepare_database(args.database_url)
    here = Path(__file__).resolve()
    with psycopg.connect(url, autocommit=True) as connection, Que.using(connection):
        connection.execute(LATENCY_TABLE)
        connection.execute("TRUNCATE que_bench_latency")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "que.cli",
                "-l",
                "warn",
                "-w",
                "1",
                "-i",
                args.poll_interval,
                "--listen",
                args.listen,
                "--connection-url",
                url,
                str(here),
            ],
            cwd=here.parent,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait(connection, "SELECT 1 FROM que_lockers WHERE ruby_pid = %s", [process.pid])
            time.sleep(0.2)  # let the first poll pass: every job below is new to the worker
            for n in range(args.n):
                Stamp.enqueue()
                wait(connection, "SELECT 1 FROM que_bench_latency HAVING count(*) > %s", [n])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
        rows = connection.execute(
            "SELECT extract(epoch FROM started_at - run_at) * 1000 FROM que_bench_latency"
        ).fetchall()
    latencies = [float(row[0]) for row in rows]
    mode = (
        "LISTEN/NOTIFY"
        if args.listen.lower() in {"true", "yes", "on", "1"}
        else f"polling every {args.poll_interval}s"
    )
    print(
        f"enqueue-to-start latency over {len(latencies)} jobs ({mode}): "
        f"p50 {statistics.median(latencies):.2f} ms, p99 {percentile(latencies, 0.99):.2f} ms, "
        f"max {max(latencies):.2f} ms"
    )


def wait(connection: psycopg.Connection[Any], statement: str, params: list[Any]) -> None:
    deadline = time.monotonic() + 30
    while not connection.execute(statement, params).fetchone():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for: {statement}")
        time.sleep(0.0005)


if __name__ == "__main__":
    main()
