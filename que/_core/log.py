"""Structured log events: one JSON object per line through Python ``logging``.

Every event carries ``lib``, ``hostname``, ``pid``, ``thread`` and ``event``; the
message is the JSON text (or whatever ``Que.log_formatter`` returns; ``None``
drops the event) and the fields ride along as ``record.que`` for handlers that
want them. que never configures handlers; the ``que`` command does.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any

from que._core.config import config

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "unknown": logging.CRITICAL,
}

_HOSTNAME = socket.gethostname()


def level_number(level: str | int | bool | None) -> int | None:
    """A logging level from a name or number; ``None`` for anything else (not logged)."""
    if isinstance(level, bool) or level is None:
        return None
    if isinstance(level, int):
        return level
    return LEVELS.get(level.lower())


def log_event(level: int, event: str, *, internal: bool = False, **fields: Any) -> None:
    """Log ``event`` with ``fields`` at ``level`` on que's (or its internal) logger."""
    logger = config.internal_logger if internal else config.logger
    if not logger.isEnabledFor(level):
        return
    data: dict[str, Any] = {
        "lib": "que",
        "hostname": _HOSTNAME,
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "event": event,
        **fields,
    }
    formatter = config.log_formatter
    message = formatter(data) if formatter is not None else json.dumps(data, default=str)
    if message:
        logger.log(level, message, extra={"que": data})
