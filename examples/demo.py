"""A small tour of que: enqueue jobs in a transaction, then let a worker pool work them.

Run with ``python examples/demo.py``. It uses the PostgreSQL server in
``$DATABASE_URL`` (default: the local one) and a database of its own, ``que_demo``,
which it creates and migrates when missing.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from que import Job, Que

SERVER_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_DATABASE = "que_demo"


class SendWelcomeEmail(Job, name="demo.SendWelcomeEmail"):
    priority = 10

    def run(self, user_id: int, *, address: str) -> None:
        print(f"  job {self.id}: welcome mail for user {user_id} <{address}>")


class Flaky(Job, name="demo.Flaky"):
    def run(self) -> None:
        raise ConnectionError("the mail server is down")


def demo_database_url() -> str:
    """Create the demo database on first use and return its URL."""
    params = conninfo_to_dict(SERVER_URL)
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [DEMO_DATABASE]
        ).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DATABASE)))
    return make_conninfo(**{**params, "dbname": DEMO_DATABASE})


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="  log: %(message)s")
    with ConnectionPool(demo_database_url(), min_size=1, max_size=4, open=True) as pool:
        Que.connection = pool
        Que.migrate()
        Que.clear()
        print(f"que schema version {Que.db_version()}")

        with Que.transaction() as connection:
            connection.execute("CREATE TEMP TABLE users (id int, email text)")
            connection.execute("INSERT INTO users VALUES (1, 'ada@example.com')")
            SendWelcomeEmail.enqueue(1, address="ada@example.com")
        print("enqueued in the same transaction as the user row")

        with Que.bulk_enqueue():
            for user_id in range(2, 5):
                SendWelcomeEmail.enqueue(user_id, address=f"user{user_id}@example.com")
        Flaky.enqueue()
        print("queue:", [(s["job_class"], s["count"]) for s in Que.job_stats()])

        print("starting the worker pool in this process (Que.mode = 'async')")
        Que.mode = "async"
        try:
            deadline = time.monotonic() + 30
            while any(row["error_count"] == 0 for row in Que.jobs()):
                if time.monotonic() > deadline:
                    raise SystemExit("the workers did not finish in 30 s")
                time.sleep(0.05)
        finally:
            Que.mode = "off"  # running jobs finish, buffered ones are released
        (retry,) = Que.jobs()
        print(
            f"done: {retry['job_class']} will retry at {retry['run_at']:%H:%M:%S} "
            f"after {retry['last_error_message']!r}; the rest were destroyed"
        )
        Que.clear()
        Que.connection = None


if __name__ == "__main__":
    main()
