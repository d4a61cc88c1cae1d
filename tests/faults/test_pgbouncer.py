"""PgBouncer in transaction mode: refused for the locks, fine for the jobs (the recipe).

Each test starts its own PgBouncer in front of the test database. A lock
connection through it would strand advisory locks in PgBouncer's server
connections and run jobs twice, so que refuses it at start; the recipe in
docs/how-to/deployment.md (jobs through PgBouncer, the locker direct) drains a queue
with nothing lost or run twice.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fault_jobs import Ledger
from ledger import enqueue, reset, tally
from private_server import free_port
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from test_lost_connections import FAULT_JOBS
from worker_fixtures import (
    ADVISORY_LOCKS,
    REPO,
    all_events,
    job_count,
    scalar,
    stop_processes,
    wait_for,
)

from que import ConfigurationError
from que.worker import PoolSettings, WorkerPool

PGBOUNCER = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
RECIPE = re.compile(r"```python\n(# myapp/que_setup\.py.*?)```", re.DOTALL)

CONFIG = """\
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
logfile = {directory}/pgbouncer.log
"""


@pytest.fixture
def pgbouncer_url(que_database_url: str) -> Iterator[str]:
    """The test database through a PgBouncer in transaction mode, stopped after the test."""
    if PGBOUNCER is None:
        pytest.skip("needs pgbouncer (apt-get install pgbouncer; .ci/run installs it)")
    server = conninfo_to_dict(que_database_url)
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="que-pgbouncer-"))
    (directory / "users.txt").write_text(f'"{server.get("user", "postgres")}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        CONFIG.format(
            host=server.get("host", "127.0.0.1"),
            port=server.get("port", 5432),
            listen_port=port,
            directory=directory,
        )
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        shutil.chown(directory, "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = make_conninfo(que_database_url, host="127.0.0.1", port=port)

    def accepting() -> bool:
        if process.poll() is not None:
            log = directory / "pgbouncer.log"
            raise AssertionError(f"pgbouncer exited: {log.read_text() if log.exists() else ''}")
        try:
            psycopg.connect(url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    try:
        wait_for(accepting, what="pgbouncer to accept connections")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def test_a_lock_connection_through_pgbouncer_is_refused_with_one_line(
    que_processes, worker_db, pgbouncer_url
):
    reset(worker_db)
    Ledger.enqueue("never-through-pgbouncer")
    process = que_processes(
        ready=False, modules=(FAULT_JOBS,), extra_env={"DATABASE_URL": pgbouncer_url}
    )
    assert process.wait() == 1
    stderr = process.stderr()
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert "not a session of its own" in stderr and "--connection-url" in stderr, stderr
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0
    assert scalar(worker_db, ADVISORY_LOCKS) == 0  # none stranded in PgBouncer's sessions
    assert job_count(worker_db) == 1


def test_an_in_process_pool_refuses_a_lock_connection_through_pgbouncer(worker_db, pgbouncer_url):
    pool = WorkerPool(PoolSettings(connection_url=pgbouncer_url))
    with pytest.raises(ConfigurationError, match="connection_url"):
        pool.start()
    assert not pool.running
    assert scalar(worker_db, "SELECT count(*) FROM que_lockers") == 0


def test_the_deployment_recipe_runs_jobs_through_pgbouncer_and_locks_directly(
    que_processes, worker_db, que_database_url, pgbouncer_url, tmp_path
):
    """Two processes, jobs on a pool through PgBouncer (as docs/how-to/deployment.md sets it
    up), the locker on --connection-url: every job done once, no lock left anywhere."""
    recipe = RECIPE.search((REPO / "docs" / "how-to" / "deployment.md").read_text())
    assert recipe is not None, "docs/how-to/deployment.md lost its PgBouncer recipe"
    (tmp_path / "que_setup.py").write_text(recipe.group(1))
    reset(worker_db)
    keys = enqueue(1000, 0.001)
    started = time.monotonic()
    processes = [
        que_processes(
            "--connection-url",
            que_database_url,
            "-w",
            "4",
            "-i",
            "0.2",
            modules=(str(tmp_path / "que_setup.py"), FAULT_JOBS),
            extra_env={"PGBOUNCER_URL": pgbouncer_url},
        )
        for _ in range(2)
    ]
    wait_for(lambda: job_count(worker_db) == 0, timeout=60, interval=0.1, what="the queue to drain")
    drained = time.monotonic() - started
    codes = stop_processes(processes)
    events = all_events(processes)
    result = tally(worker_db, keys, events)
    print(result, f"codes={codes} drained in {drained:.1f}s")
    assert codes == [0, 0]
    assert (result.lost, result.duplicated, result.concurrent, result.stuck) == (0, 0, 0, 0)
    assert result.done == len(keys)
    errors = [event for event in events if event["event"] == "job_errored"]
    assert errors == []
    assert scalar(worker_db, ADVISORY_LOCKS) == 0
