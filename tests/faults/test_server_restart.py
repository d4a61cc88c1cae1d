"""The server restarted mid-drain: the que processes recover by themselves, and
nothing is lost, committed twice or run at once.

``-m fast`` terminates every session (57P01) and checkpoints; ``-m immediate``
is a crash: every process killed at once, no checkpoint, crash recovery at
start. Either way every lock and open transaction dies with the server, and
every connection of every process (locker, workers, the job's own) breaks.
"""

from __future__ import annotations

import time

import pytest
from ledger import enqueue, tally
from test_lost_connections import FAULT_JOBS
from worker_fixtures import all_events, job_count, scalar, stop_processes, wait_for

JOBS = 2000
LEDGER_COUNT = "SELECT count(*) FROM fault_ledger"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_restart_mid_drain_loses_nothing_and_the_processes_recover_by_themselves(
    mode, private_server, private_db, private_que_processes
):
    keys = enqueue(JOBS, 0.01)  # 12 workers: about 1 s of work left at the restart
    processes = [
        private_que_processes("-w", "4", "-i", "0.2", modules=(FAULT_JOBS,)) for _ in range(3)
    ]
    wait_for(
        lambda: scalar(private_db, LEDGER_COUNT) >= JOBS // 4,
        timeout=60,
        what="a quarter of the jobs to be done",
    )
    started = time.monotonic()
    private_server.restart(mode)
    up = time.monotonic() - started
    with private_server.connect() as connection:
        done_at_restart = scalar(connection, LEDGER_COUNT)
        assert done_at_restart < JOBS, "the restart came after the drain"
        wait_for(
            lambda: scalar(connection, LEDGER_COUNT) > done_at_restart,
            timeout=60,
            interval=0.01,
            what="the queue to move again",
        )
        recovery = time.monotonic() - started
        wait_for(
            lambda: all(p.events("locker_reconnected") for p in processes),
            timeout=30,
            what="every locker to reconnect",
        )
        wait_for(
            lambda: job_count(connection) == 0, timeout=60, interval=0.1, what="the queue to drain"
        )
        codes = stop_processes(processes)
        events = all_events(processes)
        result = tally(connection, keys, events)
    counts = {
        name: sum(event["event"] == name for event in events)
        for name in (
            "locker_connection_lost",
            "locker_connect_failed",
            "locker_reconnected",
            "worker_error",
            "job_errored",
            "job_lock_lost",
        )
    }
    print(
        f"restart -m {mode}: {result} done_at_restart={done_at_restart} "
        f"server_up={up:.2f}s recovery={recovery:.2f}s exit_codes={codes} {counts}"
    )
    assert codes == [0, 0, 0], [p.stderr() for p in processes]
    assert (result.lost, result.duplicated, result.concurrent, result.stuck) == (0, 0, 0, 0), result
    assert result.done == JOBS
    assert counts["locker_connection_lost"] >= 3  # every process saw it, and said so
