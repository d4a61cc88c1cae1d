"""The benchmark task for procrastinate's worker, started as its users start it.

    BENCH_DSN=... python -m procrastinate --app bench.compare.procrastinate_jobs.app worker

The worker keeps its defaults. The harness imports ``app`` too, to defer jobs
on its own connection (the task name is explicit, so both sides agree).
"""

from __future__ import annotations

import os
import time

from procrastinate import App, PsycopgConnector

from bench.compare.accounting import AsyncRecorder

TASK_NAME = "bench_noop"
_DSN = os.environ.get("BENCH_DSN", "")

app = App(connector=PsycopgConnector(conninfo=_DSN))
_recorder = AsyncRecorder(_DSN)


@app.task(name=TASK_NAME)
async def bench_noop(n: int, notify: bool) -> None:
    started = time.time()
    await _recorder.record(n, notify, started)
