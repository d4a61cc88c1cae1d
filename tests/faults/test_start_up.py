"""SIGTERM at any moment of start-up: exit 0, no que_lockers row left, no job lost or locked."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from ledger import enqueue, reset, tally
from test_lost_connections import FAULT_JOBS
from worker_fixtures import QueProcess, all_events, job_count, scalar, wait_for

# Seconds after the command has installed its handlers: importing (que, psycopg,
# the job module), checking the database, connecting, registering, working.
DELAYS = [0.0, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6, 1.0]


def catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler (``SigCgt``: a mask, bit n-1 for signal n)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return False


def wait_for_handlers(process: QueProcess) -> None:
    wait_for(
        lambda: process.popen.poll() is not None or catches_sigterm(process.pid),
        interval=0.0005,
        what="the command to install its signal handlers",
    )


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(),
    reason="watches for the SIGTERM handler in /proc/<pid>/status (Linux only)",
)
def test_sigterm_at_any_moment_of_start_up_exits_0_and_leaves_nothing_behind(
    que_processes, worker_db
):
    reset(worker_db)
    keys = enqueue(300, 0.002)
    outcomes, processes = [], []
    for delay in DELAYS:
        process = que_processes("-w", "2", "-i", "0.1", modules=(FAULT_JOBS,), ready=False)
        wait_for_handlers(process)
        time.sleep(delay)
        process.signal(signal.SIGTERM)
        code = process.wait()
        received = process.events("signal_received")
        stage = received[0].get("during", "running") if received else "no signal logged"
        left = scalar(
            worker_db, "SELECT count(*) FROM que_lockers WHERE ruby_pid = %s", [process.pid]
        )
        outcomes.append((delay, code, stage, left))
        processes.append(process)
    print(outcomes)
    assert [(code, left) for _, code, _, left in outcomes] == [(0, 0)] * len(DELAYS), outcomes
    stages = {stage for _, _, stage, _ in outcomes}
    assert stages == {"start-up", "running"}, outcomes  # the sweep covered both
    # Whatever each process took is done or back in the queue, unlocked.
    processes.append(que_processes("-w", "4", "-i", "0.1", modules=(FAULT_JOBS,)))
    wait_for(lambda: job_count(worker_db) == 0, timeout=30, what="the queue to drain")
    events = all_events(processes)
    result = tally(worker_db, keys, events)
    assert (result.lost, result.duplicated, result.concurrent, result.done) == (
        0,
        0,
        0,
        len(keys),
    ), result
