"""The exceptions que raises: one root, `que.Error`, and a few subclasses carrying data."""

from __future__ import annotations


class Error(Exception):
    """Base class of every error raised by que itself."""


class ConfigurationError(Error, ValueError):
    """que is not set up the way the call needs (no connection, an invalid mode, a
    bad worker pool setting, ...)."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A setting was given a value of the wrong type."""


class JobOptionError(Error, ValueError):
    """A job option (queue, priority, run_at, tags, job_class, ...) is invalid."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        """The name of the option at fault."""


class JobDefinitionError(Error, TypeError):
    """A ``Job`` subclass that que cannot run as it is written."""


class SerializationError(Error, TypeError):
    """Job arguments that cannot be stored as JSON."""


class UnknownJobClass(Error):
    """A job row names a class that cannot be found in this process."""

    def __init__(self, job_class: str, reason: str | None = None) -> None:
        remedy = (
            "import the module that defines it (for the `que` command, pass it as an "
            "argument), allow importing it with Que.job_module_prefixes, or register a "
            f"class with `class MyJob(Job, name={job_class!r})`"
        )
        super().__init__(
            f"no job class named {job_class!r}: "
            + (f"{reason}; fix the module or " if reason else "")
            + remedy
        )
        self.job_class = job_class
        """The name the row gives."""
        self.reason = reason
        """Why importing its module failed, if it did."""


class ConnectionLost(Error):
    """The database connection broke while que was using it; nothing was recorded."""


class LockLost(Error):
    """A worker no longer holds the lock on a job, so nothing of it may commit."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"the lock on job {job_id} was lost: another process holds it")
        self.job_id = job_id
        """The job whose lock was lost."""


class JobExited(Error):
    """A job run by a worker thread raised ``SystemExit``, ``KeyboardInterrupt`` or
    another ``BaseException``: in a worker thread that is the job's error."""

    def __init__(self, raised: BaseException) -> None:
        super().__init__(f"the job raised {type(raised).__qualname__}: {raised}")
        self.raised = raised
        """What the job raised."""
        self.__cause__ = raised


class MigrationError(Error):
    """A schema migration was asked for that cannot be done."""


class SchemaError(Error):
    """que's tables are missing, at another version than this que's, or their
    version cannot be read; the message says what to run."""

    def __init__(self, message: str, *, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version
        """The database's schema version, where it could be read (0: no tables)."""
