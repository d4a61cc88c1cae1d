"""que_testing: the pytest toolkit for que (a plugin loaded automatically by pytest).

Fixtures: ``que_db``, ``que_committed_db``, ``que_jobs``, ``que_sync``,
``que_time``, ``que_worker``, ``que_database_url``; marker ``@pytest.mark.que(mode="sync")``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from que_testing.assertions import ANY, EnqueuedJob, JobsAssertions
    from que_testing.timetravel import TimeTravel
    from que_testing.worker import BackgroundWorker

# Imported on first use, so that loading the plugin stays cheap (see fixtures.py).
_DEFINED_IN = {
    "ANY": "que_testing.assertions",
    "EnqueuedJob": "que_testing.assertions",
    "JobsAssertions": "que_testing.assertions",
    "TimeTravel": "que_testing.timetravel",
    "BackgroundWorker": "que_testing.worker",
}


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module 'que_testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DEFINED_IN})


__all__ = ["ANY", "BackgroundWorker", "EnqueuedJob", "JobsAssertions", "TimeTravel"]
