"""que_testing: the pytest toolkit for que (a plugin loaded automatically by pytest).

Fixtures: ``que_db``, ``que_committed_db``, ``que_jobs``, ``que_sync``,
``que_time``, ``que_worker``, ``que_database_url``; marker ``@pytest.mark.que(mode="sync")``.
"""

from __future__ import annotations

from que_testing.assertions import ANY, EnqueuedJob, JobsAssertions
from que_testing.timetravel import TimeTravel
from que_testing.worker import BackgroundWorker

__all__ = ["ANY", "BackgroundWorker", "EnqueuedJob", "JobsAssertions", "TimeTravel"]
