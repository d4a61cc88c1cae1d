"""`que` processes SIGKILLed mid-drain, one after another: the jobs each held
(running and buffered) are done by the others, and nothing is lost, committed
twice or run at once.

A killed process cleans up nothing: its sockets close with it, so PostgreSQL
rolls back its job transactions and releases its locks, and its que_lockers
row stays until another locker cleans it.
"""

from __future__ import annotations

import signal
import time
from typing import Any

import psycopg
from ledger import enqueue, reset, tally
from test_lost_connections import FAULT_JOBS
from worker_fixtures import (
    QueProcess,
    all_events,
    job_count,
    scalar,
    stop_processes,
    wait_for,
)

JOBS = 2400
KILLS = 3
LEDGER_COUNT = "SELECT count(*) FROM fault_ledger"
# The jobs whose id locks a process's locker holds: running and buffered.
HELD = """
SELECT j.id, j.args->>0 FROM pg_locks AS l
JOIN que_jobs AS j ON j.id = (l.classid::bigint << 32) | l.objid::bigint
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.pid = (SELECT pid FROM que_lockers WHERE ruby_pid = %s)
"""


def kill(victim: QueProcess, connection: psycopg.Connection[Any]) -> dict[str, Any]:
    """SIGKILL ``victim``; wait for the jobs it held to be done. What it held, how
    many of those the others did, and the seconds that took."""
    held = dict(connection.execute(HELD, [victim.pid]).fetchall())
    victim.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.wait()
    wait_for(
        lambda: (
            scalar(connection, "SELECT count(*) FROM que_jobs WHERE id = ANY(%s)", [list(held)])
            == 0
        ),
        timeout=30,
        interval=0.01,
        what="the killed process's jobs to be done",
    )
    recovery = round(time.monotonic() - killed_at, 2)
    taken_over = scalar(
        connection,
        "SELECT count(*) FROM fault_ledger WHERE key = ANY(%s) AND pid <> %s",
        [list(held.values()), victim.pid],
    )
    return {
        "held": len(held),
        "taken_over": taken_over,
        "recovery": recovery,
        "left": job_count(connection),
    }


def test_sigkilled_processes_jobs_are_done_by_the_others(que_processes, worker_db):
    reset(worker_db)
    keys = enqueue(JOBS, 0.02)  # 12 workers: some 4 s of work

    def start() -> QueProcess:
        return que_processes("-w", "4", "-i", "0.2", modules=(FAULT_JOBS,))

    alive = [start() for _ in range(3)]
    killed, kills = [], []
    for _ in range(KILLS):
        done = scalar(worker_db, LEDGER_COUNT)
        wait_for(
            lambda done=done: scalar(worker_db, LEDGER_COUNT) >= done + 200,
            timeout=30,
            what="200 more jobs done",
        )
        victim = alive.pop(0)  # the oldest: the replacements work too before they die
        kills.append(kill(victim, worker_db))
        killed.append(victim)
        alive.append(start())
    wait_for(lambda: job_count(worker_db) == 0, timeout=60, interval=0.1, what="the queue to drain")
    codes = stop_processes(alive)
    killed_codes = [victim.popen.returncode for victim in killed]
    result = tally(worker_db, keys, all_events(killed + alive))
    print(f"{result} kills={kills} killed_exit_codes={killed_codes} exit_codes={codes}")
    assert killed_codes == [-signal.SIGKILL] * KILLS
    assert codes == [0, 0, 0], [process.stderr() for process in alive]
    assert all(kill["taken_over"] and kill["left"] for kill in kills), kills  # mid-drain
    assert (result.lost, result.duplicated, result.concurrent, result.stuck) == (0, 0, 0, 0), result
    assert result.done == JOBS
