"""Real elapsed time for the worker pool's own waits, whatever freezegun does.

The pool measures its waits (poll intervals, back-off, shutdown deadlines) with
the process's monotonic clock. Tests freeze and move *job* time through
``Que.clock``; they must not freeze these waits, or a frozen test would hang.
freezegun swaps ``time.monotonic`` wherever a module holds it as a global, so the
real function is kept here as a default argument, which it does not touch.
The back-off of the locker's reconnections and of a worker whose connection broke
is here too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

BACKOFF_START = 0.1  # seconds: the first pause after a lost connection; doubles
BACKOFF_MAXIMUM = 5.0  # seconds


def monotonic(_real: Callable[[], float] = time.monotonic) -> float:
    """Seconds on the process's monotonic clock, never frozen."""
    return _real()


def next_backoff(current: float) -> float:
    """The pause after ``current`` seconds of it (0: none yet) while a connection keeps
    failing: 0.1 s, doubling up to 5 s."""
    return min(BACKOFF_MAXIMUM, current * 2 or BACKOFF_START)
