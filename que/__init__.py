"""que: a PostgreSQL job queue for Python, after Ruby's Que.

Jobs are rows enqueued in your own transaction and worked under advisory locks,
so a crashed worker loses nothing. Start with ``from que import Que, Job``.

The names below are imported on first use: ``import que.cli`` stays cheap, so
the ``que`` command can handle signals before psycopg and your modules load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from que._core.facade import Que
    from que._core.inline import WorkSummary
    from que._core.running import JobResult
    from que.errors import (
        ConfigurationError,
        ConfigurationTypeError,
        ConnectionLost,
        Error,
        JobDefinitionError,
        JobExited,
        JobOptionError,
        LockLost,
        MigrationError,
        SchemaError,
        SerializationError,
        UnknownJobClass,
    )
    from que.job import Job, default_retry_interval
    from que.types import JobOptions, JobRow

__version__ = "0.1.0"
"""que's version (the distribution's too: pyproject.toml reads it from here)."""

_DEFINED_IN = {
    "JobOptions": "que.types",
    "JobRow": "que.types",
    **dict.fromkeys(
        [
            "ConfigurationError",
            "ConfigurationTypeError",
            "ConnectionLost",
            "Error",
            "JobDefinitionError",
            "JobExited",
            "JobOptionError",
            "LockLost",
            "MigrationError",
            "SchemaError",
            "SerializationError",
            "UnknownJobClass",
        ],
        "que.errors",
    ),
    "Que": "que._core.facade",
    "WorkSummary": "que._core.inline",
    "Job": "que.job",
    "default_retry_interval": "que.job",
    "JobResult": "que._core.running",
}


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module 'que' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DEFINED_IN})


def enqueue(*args: Any, job_options: JobOptions, **kwargs: Any) -> Job:
    """Enqueue a job by its stored name, e.g. for a class another codebase defines."""
    from que._core.facade import Que

    return Que.enqueue(*args, job_options=job_options, **kwargs)


__all__ = [
    "ConfigurationError",
    "ConfigurationTypeError",
    "ConnectionLost",
    "Error",
    "Job",
    "JobDefinitionError",
    "JobExited",
    "JobOptionError",
    "JobOptions",
    "JobResult",
    "JobRow",
    "LockLost",
    "MigrationError",
    "Que",
    "SchemaError",
    "SerializationError",
    "UnknownJobClass",
    "WorkSummary",
    "__version__",
    "default_retry_interval",
    "enqueue",
]
