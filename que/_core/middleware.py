"""Running an action inside user middleware: the first one added is the outermost."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def run_through(
    middleware: Sequence[Callable[..., object]],
    args: tuple[Any, ...],
    innermost: Callable[[], object],
) -> bool:
    """Call ``innermost`` wrapped by each ``middleware(*args, call_next)``.

    Returns whether ``innermost`` was reached: a middleware may choose not to
    call ``call_next``. What middleware return is ignored.
    """
    if not middleware:
        innermost()
        return True
    reached = False

    def step(index: int) -> None:
        nonlocal reached
        if index == len(middleware):
            reached = True
            innermost()
        else:
            middleware[index](*args, lambda: step(index + 1))

    step(0)
    return reached
