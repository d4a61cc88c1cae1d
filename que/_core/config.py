"""The one source of truth for que's settings; ``Que`` exposes it to users."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Literal, Protocol, TypeAlias

from que._core.connection import UNCONFIGURED, ConnectionSource
from que._core.schema import queue_name_problem
from que.errors import ConfigurationError, ConfigurationTypeError
from que.types import Clock, ErrorNotifier, JobMiddleware, LogFormatter, SQLMiddleware

Mode: TypeAlias = Literal["off", "sync", "async"]
MODES: tuple[Mode, ...] = ("off", "sync", "async")

DEFAULT_QUEUE = "default"


class AsyncMode(Protocol):
    """What ``Que.mode = "async"`` starts and stops: an in-process worker pool."""

    def start(self) -> object: ...

    def stop(self, timeout: float | None = None) -> bool: ...


ASYNC_MODE_PACKAGE = "que.worker"
"""Provides :class:`AsyncMode` when imported (it sets ``config.async_mode``). The
core imports it by name, only once async mode is asked for: the worker builds on
the core, never the reverse."""


def database_clock() -> datetime | None:
    """The production clock: defer to the database's ``now()``."""
    return None


class Config:
    """Settings read by every layer of que; validated when they are set."""

    def __init__(self) -> None:
        self.connection: ConnectionSource = UNCONFIGURED
        self._mode: Mode = "off"
        self._default_queue: str = DEFAULT_QUEUE
        self.error_notifier: ErrorNotifier | None = None
        self.clock: Clock = database_clock
        self.logger: logging.Logger = logging.getLogger("que")
        self.internal_logger: logging.Logger = logging.getLogger("que.internal")
        self.log_formatter: LogFormatter | None = None
        self.job_middleware: list[JobMiddleware] = []
        self.sql_middleware: list[SQLMiddleware] = []
        self._job_module_prefixes: tuple[str, ...] = ()
        self.async_mode: AsyncMode | None = None
        """Installed by :data:`ASYNC_MODE_PACKAGE`."""

    @property
    def default_queue(self) -> str:
        """The queue of jobs whose class names none; ``None`` sets it back to "default"."""
        return self._default_queue

    @default_queue.setter
    def default_queue(self, name: str | None) -> None:
        if name is None:
            name = DEFAULT_QUEUE
        problem = queue_name_problem(name)
        if problem is not None:
            error = ConfigurationError if isinstance(name, str) else ConfigurationTypeError
            raise error(f"Que.default_queue: {problem}")
        self._default_queue = name

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        if mode not in MODES:
            error = ConfigurationError if isinstance(mode, str) else ConfigurationTypeError
            raise error(f"Que.mode must be one of {', '.join(map(repr, MODES))}, not {mode!r}")
        self._mode = mode

    @property
    def job_module_prefixes(self) -> tuple[str, ...]:
        """Modules a worker may import to find a job's class, besides those imported
        already: each prefix allows that module and the modules below it."""
        return self._job_module_prefixes

    @job_module_prefixes.setter
    def job_module_prefixes(self, prefixes: Iterable[str]) -> None:
        if isinstance(prefixes, str):
            raise ConfigurationTypeError(
                f"Que.job_module_prefixes takes a list of module names, not the string "
                f"{prefixes!r}: write [{prefixes!r}]"
            )
        checked = tuple(prefixes)
        for prefix in checked:
            if not isinstance(prefix, str) or not all(
                part.isidentifier() for part in prefix.split(".")
            ):
                raise ConfigurationError(
                    f"Que.job_module_prefixes: {prefix!r} is not a module name "
                    "(such as 'myapp.jobs')"
                )
        self._job_module_prefixes = checked

    def now(self) -> datetime | None:
        """The clock's current time (``None``: let the database decide)."""
        now = self.clock()
        if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
            error = ConfigurationError if isinstance(now, datetime) else ConfigurationTypeError
            raise error(
                f"the que clock returned {now!r}: it must return a timezone-aware "
                "datetime, or None for the database's now()"
            )
        return now


config = Config()
