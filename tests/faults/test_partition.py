"""A worker process cut off from the server by a network partition: its jobs are
done by the other process within 60 s of the cut, it never commits them, and it
neither hangs nor stays silent.

The partitioned process runs in a network namespace of its own, joined to the
private server by a veth pair; the cut drops every packet on both ends (a
``blackhole`` qdisc), so neither kernel sees an error, only silence, as with a
dead switch in between. Its que connections go over that path; its
``fault_attempts`` bookkeeping goes through the server's Unix-domain socket,
which no network namespace cuts off, so the ledger keeps seeing its attempts.
Only the server's keepalive and timeout settings (see private_server.SETTINGS)
end its sessions, and with them its locks, in bounded time.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from fault_jobs import Ledger
from ledger import tally
from test_lost_connections import FAULT_JOBS
from worker_fixtures import all_events, job_count, scalar, stop_processes, wait_for

# A /30 of the benchmarking range (RFC 2544), which no real network should use;
# one per session, as other sessions on this host may be testing at the same time.
SUBNETS = ipaddress.ip_network("198.18.0.0/15").subnets(new_prefix=30)
SLOW = 15.0  # seconds each held job sleeps: still running at the cut, done well within 60 s
TAKEOVER_BOUND = 60.0  # seconds from the cut to the other process having done the held jobs
SHUTDOWN_TIMEOUT = 5
EXIT_MARGIN = 2.0  # seconds for the hard stop to end the process
PARTITIONED_SESSIONS = "SELECT count(*) FROM pg_stat_activity WHERE client_addr = %s"
HELD = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND granted
  AND pid = (SELECT pid FROM que_lockers WHERE ruby_pid = %s)
"""
RUNNING = "SELECT count(*) FROM fault_attempts WHERE pid = %s AND ended_at IS NULL"


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def unused_subnet() -> tuple[str, str]:
    """The host's and the namespace's address in a /30 no interface here has."""
    used = run("ip", "-4", "-o", "addr", "show")
    for subnet in itertools.islice(SUBNETS, os.getpid() % 4096, None):
        host, namespace = (str(address) for address in subnet.hosts())
        if f" {host}/" not in used:
            return host, namespace
    raise AssertionError("no free /30 in 198.18.0.0/15")


class Partition:
    """A network namespace and the veth pair that joins it to this host."""

    def __init__(self) -> None:
        self.namespace = f"que-fault-{os.getpid()}"
        self.host_end, self.namespace_end = f"qfh{os.getpid()}", f"qfn{os.getpid()}"  # <= 15
        self.host_address, self.namespace_address = unused_subnet()
        self.prefix = ("ip", "netns", "exec", self.namespace)

    def create(self) -> None:
        run(
            "ip",
            "link",
            "add",
            self.host_end,
            "type",
            "veth",
            "peer",
            "name",
            self.namespace_end,
            "netns",
            self.namespace,
        )
        run("ip", "addr", "add", f"{self.host_address}/30", "dev", self.host_end)
        run("ip", "link", "set", self.host_end, "up")
        run(
            *self.prefix,
            "ip",
            "addr",
            "add",
            f"{self.namespace_address}/30",
            "dev",
            self.namespace_end,
        )
        run(*self.prefix, "ip", "link", "set", self.namespace_end, "up")
        run(*self.prefix, "ip", "link", "set", "lo", "up")

    def cut(self) -> None:
        """Drop every packet leaving either end."""
        run("tc", "qdisc", "add", "dev", self.host_end, "root", "blackhole")
        run(*self.prefix, "tc", "qdisc", "add", "dev", self.namespace_end, "root", "blackhole")

    def remove(self) -> None:
        for command in (
            ("ip", "link", "del", self.host_end),
            ("ip", "netns", "del", self.namespace),
        ):
            with contextlib.suppress(subprocess.CalledProcessError):
                run(*command)


@pytest.fixture
def partition(private_server) -> Iterator[Partition]:
    """A network namespace joined to the private server by a veth pair; the
    server listens on the host end. Removed afterwards, whatever happened.

    Ask for it before ``private_db``: making the server listen there restarts it."""
    if shutil.which("ip") is None or shutil.which("tc") is None:
        pytest.skip("needs iproute2 (ip, tc) to make a network namespace")
    partition = Partition()
    try:
        run("ip", "netns", "add", partition.namespace)
    except subprocess.CalledProcessError as error:
        pytest.skip(
            f"cannot create a network namespace (needs root or CAP_NET_ADMIN): "
            f"{error.stderr.strip()}"
        )
    try:
        partition.create()
        try:  # the cut, tried out on the host end before anything uses it
            run("tc", "qdisc", "add", "dev", partition.host_end, "root", "blackhole")
            run("tc", "qdisc", "del", "dev", partition.host_end, "root")
        except subprocess.CalledProcessError as error:
            pytest.skip(
                f"cannot drop a link's traffic (tc qdisc blackhole): {error.stderr.strip()}"
            )
        private_server.listen_on(partition.host_address)
        yield partition
    finally:
        partition.remove()
        private_server.listen_on()


class Milestones:
    """When each condition first held, in seconds since the cut."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.at: dict[str, float] = {}

    def mark(self, name: str, reached: bool) -> bool:
        if reached and name not in self.at:
            self.at[name] = round(time.monotonic() - self.start, 1)
        return name in self.at


@pytest.mark.timing
def test_a_partitioned_processs_jobs_are_done_elsewhere_within_60_s_and_never_committed_by_it(
    partition, private_server, private_db, private_que_processes
):
    slow = [f"slow-{n}" for n in range(4)]
    fast = [f"fast-{n}" for n in range(40)]
    partitioned = private_que_processes(
        "-w",
        "2",
        "--maximum-buffer-size",
        "2",
        "-i",
        "1",
        "--shutdown-timeout",
        str(SHUTDOWN_TIMEOUT),
        modules=(FAULT_JOBS,),
        prefix=partition.prefix,
        extra_env={
            "DATABASE_URL": private_server.url(host=partition.host_address),
            "FAULT_ATTEMPTS_URL": private_server.unix_url,
        },
    )
    held_ids = sorted(Ledger.enqueue(key, SLOW).id for key in slow)
    wait_for(
        lambda: (
            (
                scalar(private_db, HELD, [partitioned.pid]),
                scalar(private_db, RUNNING, [partitioned.pid]),
            )
            == (4, 2)
        ),
        what="the partitioned process to run two slow jobs and buffer two",
    )
    other = private_que_processes("-w", "6", "-i", "1", modules=(FAULT_JOBS,))
    log_at_cut = len(private_server.log())
    cut_at = scalar(private_db, "SELECT clock_timestamp()")
    partition.cut()
    since = Milestones()
    for key in fast:  # announced to both lockers: the partitioned one's never arrive
        Ledger.enqueue(key)

    def watch(name: str, condition: Callable[[], bool]) -> Callable[[], bool]:
        def reached() -> bool:
            since.mark(
                "server dropped its sessions",
                scalar(private_db, PARTITIONED_SESSIONS, [partition.namespace_address]) == 0,
            )
            return since.mark(name, condition())

        return reached

    def loss_logged() -> bool:
        return bool(partitioned.events("locker_connection_lost"))

    def done_elsewhere() -> bool:
        return scalar(
            private_db,
            "SELECT count(*) FROM fault_ledger WHERE key = ANY(%s) AND pid = %s",
            [slow, other.pid],
        ) == len(slow)

    wait_for(
        watch("it logged the loss", loss_logged),
        timeout=TAKEOVER_BOUND,
        interval=0.1,
        what="the partitioned process to log its lost lock connection",
    )
    partitioned.signal(signal.SIGTERM)  # during the stall: the cut stays
    signalled = time.monotonic()
    partitioned_code = partitioned.wait(SHUTDOWN_TIMEOUT + 10)
    exited_in = round(time.monotonic() - signalled, 1)
    since.mark("it exited", True)
    wait_for(
        watch("its jobs done elsewhere", done_elsewhere),
        timeout=TAKEOVER_BOUND - (time.monotonic() - since.start) + 1,
        interval=0.1,
        what="the other process to do the held jobs",
    )
    wait_for(lambda: job_count(private_db) == 0, timeout=30, what="the queue to drain")
    codes = [partitioned_code, *stop_processes([other])]
    result = tally(private_db, [*slow, *fast], all_events([partitioned, other]))
    since.at["other began them"] = round(
        float(
            scalar(
                private_db,
                "SELECT extract(epoch FROM min(started_at) - %s) FROM fault_attempts "
                "WHERE key = ANY(%s) AND pid = %s",
                [cut_at, slow, other.pid],
            )
        ),
        1,
    )
    committed_by_partitioned = scalar(
        private_db, "SELECT count(*) FROM fault_ledger WHERE pid = %s", [partitioned.pid]
    )
    (lost,) = partitioned.events("locker_connection_lost")
    logged = [
        event["event"]
        for event in partitioned.events()
        if event["event"] not in {"worker_pool_started", "job_worked"}
    ]
    server_said = [
        line for line in private_server.log()[log_at_cut:].splitlines() if "client" in line
    ]
    left_open = scalar(private_db, RUNNING, [partitioned.pid])  # ended by its hard stop
    print(
        f"partition: {result} after_cut={since.at} sigterm_to_exit={exited_in}s "
        f"exit_codes={codes} committed_by_partitioned={committed_by_partitioned} "
        f"its_attempts_left_open={left_open} "
        f"partitioned_logged={logged} server_log={server_said}"
    )
    assert since.at["its jobs done elsewhere"] <= TAKEOVER_BOUND, since.at
    assert committed_by_partitioned == 0
    assert (result.lost, result.duplicated, result.concurrent, result.stuck) == (0, 0, 0, 0), result
    assert result.done == len(slow) + len(fast)
    # Not silent: it named every job whose lock it lost, then exited within the timeout.
    assert sorted(lost["running_job_ids"] + lost["dropped_job_ids"]) == held_ids, lost
    assert partitioned_code in (0, 1), partitioned.stderr()
    assert exited_in <= SHUTDOWN_TIMEOUT + EXIT_MARGIN
    assert codes[1:] == [0], other.stderr()
