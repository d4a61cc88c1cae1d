"""A small app running the in-process worker pool (async mode), for the interpreter-exit test.

    python tests/worker_async_app.py DSN KEY

Starts the pool, enqueues a slow job, waits until it is running, then returns
from the script: the pool must let the job finish before the interpreter exits.
"""

from __future__ import annotations

import sys
import time

from psycopg_pool import ConnectionPool
from worker_jobs import Record

from que import Que
from que.worker import inprocess


def main(dsn: str, key: str) -> None:
    Que.connection = ConnectionPool(dsn, min_size=1, max_size=4, open=True)
    inprocess.configure(worker_priorities=(None,), poll_interval=0.1)
    pool = inprocess.start()
    job = Record.enqueue(key, 0.5)
    deadline = time.monotonic() + 10
    while pool.running_job_ids() != [job.id]:
        if time.monotonic() > deadline:
            raise SystemExit("the job never started")
        time.sleep(0.01)
    print("exiting with the job running", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
