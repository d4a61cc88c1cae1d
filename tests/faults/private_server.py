"""A PostgreSQL server of the fault suite's own, for faults of the server itself.

Restarting, crashing or cutting off a server is only safe on one nothing else
uses: these fixtures start a private one (its own data directory, a free port,
trust authentication) once per session and remove it afterwards. The shared
test server that que_testing finds is never stopped, restarted or reconfigured.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fault_jobs import SCHEMA
from psycopg.conninfo import make_conninfo
from worker_fixtures import ADVISORY_LOCKS, QueProcess, que_process_starter, scalar, wait_for

from que import Que
from que._core.config import database_clock

DATABASE = "que_fault"
SHARED_PORT = 5432  # the shared test server's: never this one
START_TIMEOUT = 60  # seconds for pg_ctl to start or stop the server
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": 200,
    "shared_buffers": "32MB",
    # Faster commits: only the server process crashes here, never the kernel,
    # so an immediate shutdown still finds every commit in the WAL.
    "fsync": "off",
    # A client that vanishes without closing its connection (a network
    # partition) loses its session, its open transactions and its advisory
    # locks in bounded time (test_partition.py):
    # - keepalives, for a session idle or idle in transaction (a worker's while
    #   its job runs): 10 + 3 * 5 s, or 30 s on Linux, where tcp_user_timeout
    #   decides when unanswered probes give up;
    # - tcp_user_timeout, for a session with data it sent still unacknowledged
    #   (a locker's, to which NOTIFYs were sent after the cut): no keepalive is
    #   probed then, and retransmissions alone would last some 15 minutes;
    # - client_connection_check_interval, for a session whose statement is
    #   still running (not one of the partition test's).
    "tcp_keepalives_idle": 10,
    "tcp_keepalives_interval": 5,
    "tcp_keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    "client_connection_check_interval": "5s",
}
# "samenet": a client on a subnet the server has an address on (the partition
# test's veth pair); the server listens on 127.0.0.1 and such addresses only.
HBA = """\
local all all trust
host  all all 127.0.0.1/32 trust
host  all all samenet trust
"""


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are: ``pg_config --bindir``, else the newest
    /usr/lib/postgresql/*/bin."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(
                Path(
                    subprocess.run(
                        [pg_config, "--bindir"], check=True, capture_output=True, text=True
                    ).stdout.strip()
                )
            )
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    return next(
        (path for path in candidates if (path / "initdb").exists() and (path / "pg_ctl").exists()),
        None,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """A PostgreSQL server in a directory of its own, run as the ``postgres`` user
    when we are root (PostgreSQL refuses to run as root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="que-fault-pg-"))
        self.data = self.base / "data"
        self.log_path = self.base / "server.log"
        self.port = free_port()
        assert self.port != SHARED_PORT
        self._user: list[str] = []
        if os.geteuid() == 0:
            self._user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.base, "postgres", "postgres")

    def url(self, host: str = "127.0.0.1", dbname: str = DATABASE) -> str:
        return make_conninfo(host=host, port=self.port, user="postgres", dbname=dbname)

    @property
    def unix_url(self) -> str:
        """Through the Unix-domain socket, which no network namespace cuts off."""
        return self.url(host=str(self.base))

    def connect(self, url: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(url or self.url(), autocommit=True)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        command = [*self._user, str(self.bindir / program), *args]
        done = subprocess.run(
            command, cwd=self.base, capture_output=True, text=True, timeout=START_TIMEOUT + 10
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited with {done.returncode}: "
                f"{done.stdout}{done.stderr}{self.log()[-3000:]}"
            )

    def _pg_ctl(self, action: str, *options: str) -> None:
        self._run(
            "pg_ctl",
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            str(START_TIMEOUT),
            *options,
        )

    def create(self) -> None:
        """initdb, configure, start, and create the database with que's schema and
        the fault tables."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        settings = {**SETTINGS, "port": self.port, "unix_socket_directories": str(self.base)}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# que's fault suite\n")
            conf.writelines(f"{name} = '{value}'\n" for name, value in settings.items())
        (self.data / "pg_hba.conf").write_text(HBA)
        self._pg_ctl("start")
        with self.connect(self.url(dbname="postgres")) as connection:
            connection.execute(f"CREATE DATABASE {DATABASE}")
        previous = Que.connection
        with self.connect() as connection:
            Que.connection = connection
            try:
                Que.migrate()
            finally:
                Que.connection = previous
            connection.execute(SCHEMA)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast`` (sessions terminated) or ``-m immediate`` (a crash:
        no shutdown checkpoint, crash recovery at start); returns once it is up."""
        self._pg_ctl("restart", "-m", mode)

    def listen_on(self, *addresses: str) -> None:
        """Listen on 127.0.0.1 and ``addresses`` (restarts the server)."""
        with self.connect() as connection:
            connection.execute(
                f"ALTER SYSTEM SET listen_addresses = '{','.join(['127.0.0.1', *addresses])}'"
            )
        self.restart()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def private_server() -> Iterator[PrivateServer]:
    """The fault suite's own PostgreSQL server, with que's schema in its database."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "needs PostgreSQL's server binaries (initdb, pg_ctl): none from "
            "pg_config --bindir or in /usr/lib/postgresql/*/bin"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip(
            "running as root, and there is no runuser to start PostgreSQL as the postgres user"
        )
    server = PrivateServer(bindir)
    try:
        server.create()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_db(private_server: PrivateServer) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the private server's database, emptied first
    (jobs, lockers, the fault ledgers); que enqueues on a connection of its own
    there meanwhile, with the database's clock. Afterwards (once the test's que
    processes have stopped) checks that no advisory lock is left."""
    previous = Que.connection, Que.clock
    with private_server.connect() as connection, private_server.connect() as que_connection:
        connection.execute("DELETE FROM que_jobs")
        connection.execute("DELETE FROM que_lockers")
        connection.execute("TRUNCATE fault_ledger, fault_attempts")
        Que.connection, Que.clock = que_connection, database_clock
        try:
            yield connection
        finally:
            Que.connection, Que.clock = previous
    with private_server.connect() as connection:  # a fresh one: the test may restart
        wait_for(
            lambda: scalar(connection, ADVISORY_LOCKS) == 0,
            timeout=5,
            what="every advisory lock to be released",
        )


@pytest.fixture
def private_que_processes(
    private_db: psycopg.Connection[Any], private_server: PrivateServer, tmp_path: Path
) -> Iterator[Callable[..., QueProcess]]:
    """Start `que` processes on the private server (over TCP on 127.0.0.1 unless
    ``extra_env`` sets another DATABASE_URL); killed after the test."""
    with que_process_starter(private_server.url(), private_db, tmp_path) as start:
        yield start
