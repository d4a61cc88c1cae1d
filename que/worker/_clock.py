"""Real elapsed time for the worker pool's own waits, whatever freezegun does.

The pool measures its waits (poll intervals, back-off, shutdown deadlines) with
the process's monotonic clock. Tests freeze and move *job* time through
``Que.clock``; they must not freeze these waits, or a frozen test would hang.
freezegun swaps ``time.monotonic`` wherever a module holds it as a global, so the
real function is kept here as a default argument, which it does not touch.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def monotonic(_real: Callable[[], float] = time.monotonic) -> float:
    """Seconds on the process's monotonic clock, never frozen."""
    return _real()
