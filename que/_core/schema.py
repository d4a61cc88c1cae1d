"""What que's tables can store, checked before any SQL is sent.

PostgreSQL's ``text`` and ``jsonb`` hold valid Unicode without NUL characters;
Python strings may hold both NUL and lone surrogates (from bytes decoded with
``errors="surrogateescape"``, say). Caught here, they are que's clear errors
instead of a driver's ``DataError`` or ``UnicodeEncodeError``.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

JOB_SCHEMA_VERSION = 2
"""The ``job_schema_version`` of the rows que writes and works (Ruby Que 2.x's)."""
ENQUEUED_COLUMNS = (
    "queue",
    "priority",
    "run_at",
    "job_class",
    "args",
    "kwargs",
    "data",
    "job_schema_version",
)
"""The columns an enqueue writes (the database fills in the others); in this order
the INSERT and the COPY name them and bulk enqueue's rows hold them."""
PRIORITIES = range(-32768, 32768)
"""The priorities a job can have (``priority`` is a smallint); lower runs first."""
MAXIMUM_QUEUE_LENGTH = 100  # que_jobs' queue_length check
MAXIMUM_ERROR_MESSAGE = 500  # characters, as que_jobs' error_length check allows
MAXIMUM_ERROR_BACKTRACE = 10_000  # characters

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store ``text``, or ``None`` if it can."""
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    if match.group() == "\x00":
        return "contains a NUL character (\\x00), which PostgreSQL cannot store"
    return (
        f"contains a lone surrogate (U+{ord(match.group()):04X}), which is not valid "
        "Unicode: decode bytes with errors='replace' or 'backslashreplace'"
    )


def queue_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a queue's name, or ``None`` if it can."""
    if not isinstance(name, str) or not name or len(name) > MAXIMUM_QUEUE_LENGTH:
        return (
            f"a queue name must be a string of 1 to {MAXIMUM_QUEUE_LENGTH} characters, not {name!r}"
        )
    problem = text_problem(name)
    return None if problem is None else f"the queue name {name!r} {problem}"


def storable_text(text: str) -> str:
    """``text`` with what PostgreSQL cannot store replaced by U+FFFD (for error messages)."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def error_message(error: BaseException) -> str:
    """How an error is stored: ``"<ExceptionClass>: <message>"``, cut to fit."""
    return storable_text(f"{type(error).__qualname__}: {error}")[:MAXIMUM_ERROR_MESSAGE]


def error_backtrace(error: BaseException) -> str:
    """How an error's traceback is stored, cut to fit."""
    return storable_text("".join(traceback.format_exception(error)))[:MAXIMUM_ERROR_BACKTRACE]


def json_text_problem(value: Any, json_text: str, path: str) -> str | None:
    """Where in ``value`` (encoded as ``json_text``) is a string jsonb cannot store, and why.

    JSON escapes NUL as ``\\u0000`` and surrogates as ``\\udXXX``: only when one of
    those appears in the text is ``value`` walked to find the string.
    """
    if "\\u0000" not in json_text and "\\ud" not in json_text:
        return None
    return _find_unstorable(value, path)


def _find_unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else f"{path} {problem}"
    if isinstance(value, dict):
        for key, item in value.items():
            problem = text_problem(key) if isinstance(key, str) else None
            if problem is not None:
                return f"the key {key!r} in {path} {problem}"
            found = _find_unstorable(item, f"{path}[{key!r}]")
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _find_unstorable(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None
