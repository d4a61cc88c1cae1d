"""SIGINT and SIGTERM for the ``que`` command, handled from its first moment.

The handlers go in before psycopg, the worker pool and the user's modules are
imported, so a signal at any point of start-up stops the command cleanly: the
first one asks it to stop (between start-up steps, or the running pool), the
second ends the process at once. Only the interpreter's own start, before
``que.cli`` runs, is left to the default action (the process has touched
nothing yet).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
HARD_STOP_EXIT_CODE = 1


class StopRequested(Exception):
    """A stop signal arrived before the worker pool started."""


def _exit_at_once(reason: str) -> None:
    """Until the command knows more (its log, its pidfile), a second signal just exits."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"que: {reason}: exiting at once\n")
        sys.stderr.flush()
    os._exit(HARD_STOP_EXIT_CODE)


class StopSignals:
    """Records the first stop signal; the second calls :attr:`hard_exit`."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.received: str | None = None
        """The name of the first stop signal, once one arrived."""
        self.hard_exit: Callable[[str], None] = _exit_at_once
        """Called with a reason on the second signal; must not return."""
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def check(self) -> None:
        """Raise :class:`StopRequested` if a stop signal has arrived."""
        if self.requested.is_set():
            raise StopRequested(self.received)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            self.requested.set()
        else:
            self.hard_exit(f"second signal ({name})")
