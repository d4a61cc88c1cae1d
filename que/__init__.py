"""que: a PostgreSQL job queue for Python, after Ruby's Que.

Jobs are rows enqueued in your own transaction and worked under advisory locks,
so a crashed worker loses nothing. Start with ``from que import Que, Job``.
"""

from __future__ import annotations

from typing import Any

from que.enqueue import JobOptions
from que.errors import (
    ConfigurationError,
    ConnectionLost,
    Error,
    JobDefinitionError,
    JobExited,
    JobOptionError,
    LockLost,
    MigrationError,
    SerializationError,
    UnknownJobClass,
)
from que.facade import Que
from que.inline import WorkSummary
from que.job import Job, default_retry_interval
from que.runner import JobResult

__version__ = "0.1.0"


def enqueue(*args: Any, job_options: JobOptions, **kwargs: Any) -> Job:
    """Enqueue a job by its stored name, e.g. for a class another codebase defines."""
    return Que.enqueue(*args, job_options=job_options, **kwargs)


__all__ = [
    "ConfigurationError",
    "ConnectionLost",
    "Error",
    "Job",
    "JobDefinitionError",
    "JobExited",
    "JobOptionError",
    "JobOptions",
    "JobResult",
    "LockLost",
    "MigrationError",
    "Que",
    "SerializationError",
    "UnknownJobClass",
    "WorkSummary",
    "__version__",
    "default_retry_interval",
    "enqueue",
]
