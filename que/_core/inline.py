"""The inline runner: work ready jobs in the calling thread, for scripts and tests.

It takes no advisory locks, so it assumes no worker pool is working the same
jobs at the same time (in tests, none is). Each job runs through the same code
path as in a worker: its resolve action, retries and expiry happen for real.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from que._core import db, migrations, sql
from que._core.config import config
from que._core.running import JobResult, run_job
from que.errors import ConfigurationError
from que.types import JobRow


@dataclass
class WorkSummary:
    """What one call of the inline runner did."""

    results: list[JobResult] = field(default_factory=list)
    """One per job run, in order."""
    remaining: int = 0
    """Unfinished, unexpired jobs left in the queue table afterwards."""

    @property
    def ran(self) -> int:
        """How many jobs ran."""
        return len(self.results)

    @property
    def succeeded(self) -> int:
        """How many ran without an error."""
        return sum(result.succeeded for result in self.results)

    @property
    def failed(self) -> int:
        """How many raised (their errors are recorded and retried as usual)."""
        return self.ran - self.succeeded

    @property
    def errors(self) -> list[Exception]:
        """The errors the failed jobs raised, in order."""
        return [result.error for result in self.results if result.error is not None]


def work(
    *,
    queue: str | None = None,
    limit: int | None = None,
    recursive: bool = True,
    include_scheduled: bool = False,
    reraise: bool = False,
) -> WorkSummary:
    """Run ready jobs in (priority, run_at, id) order until none is left.

    ``queue`` limits it to one queue; ``limit`` to that many jobs. With
    ``recursive=False`` only the jobs present at the start run, not the ones they
    enqueue. ``include_scheduled`` also runs jobs whose ``run_at`` is in the
    future. ``reraise`` raises a job's error (after it is recorded) instead of
    going on. Each job runs at most once per call, so a job that retries at once
    does not loop.
    """
    if limit is not None and limit < 0:
        raise ConfigurationError(f"limit must be a non-negative number of jobs, not {limit}")
    with db.checkout() as connection:  # rows of another schema version would be misread
        migrations.require_latest(connection)
    summary = WorkSummary()
    attempted: list[int] = []
    only_ids = None if recursive else db.execute(sql.UNFINISHED_JOB_IDS)[0]["ids"]
    while limit is None or summary.ran < limit:
        rows = db.execute(
            sql.NEXT_INLINE_JOB,
            {
                "queue": queue,
                "include_scheduled": include_scheduled,
                "now": config.now(),
                "attempted": attempted,
                "only_ids": only_ids,
            },
        )
        if not rows:
            break
        attempted.append(rows[0]["id"])
        summary.results.append(run_job(cast(JobRow, rows[0]), reraise=reraise))
    summary.remaining = db.execute(sql.COUNT_UNFINISHED_JOBS)[0]["count"]
    return summary
