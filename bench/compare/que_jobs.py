"""The benchmark job for que's worker pool.

    que --connection-url URL bench.compare.que_jobs

The harness imports it too, to enqueue; the explicit name keeps the stored
``job_class`` the same whichever way the module is imported.
"""

from __future__ import annotations

import time

from bench.compare.accounting import RECORD_JOB, record_params
from que import Job, Que


class BenchNoop(Job, name="BenchNoop"):
    """Records its number; the row commits with the job's destroy, in one transaction."""

    def run(self, n: int, notify: bool) -> None:
        started = time.time()
        Que.execute(RECORD_JOB, record_params(n, notify, started))
