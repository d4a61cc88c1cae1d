"""Parsing the ``que`` command line into :class:`Options`; bad values are :class:`UsageError`."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from que import __version__
from que._core.log import LEVELS
from que._core.schema import MAXIMUM_QUEUE_LENGTH, queue_name_problem
from que.worker import PoolSettings, worker_priorities
from que.worker.settings import (
    ANY_PRIORITY,
    DEFAULT_WORKER_PRIORITIES,
    MAXIMUM_BUFFER_SIZE,
    MINIMUM_BUFFER_SIZE,
    MOST_IMPORTANT_PRIORITY,
    POLL_INTERVAL,
    WAIT_PERIOD,
    describe_threshold,
)

LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
_DEFAULT_PRIORITIES = ",".join(describe_threshold(t) for t in DEFAULT_WORKER_PRIORITIES)


class UsageError(Exception):
    """Something the user must fix; shown as one line on stderr, exit code 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see que --help)")


# -- option values ---------------------------------------------------------------------


def _positive_number(unit: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, not {text!r}")
        return value

    return parse


_seconds = _positive_number("seconds")
_milliseconds = _positive_number("milliseconds")


def _whole_number(minimum: int, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number of {what} >= {minimum}, not {text!r}"
            )
        return value

    return parse


def _priorities(text: str) -> list[int | None]:
    thresholds: list[int | None] = []
    for item in text.split(","):
        item = item.strip()
        if item.lower() == "any":
            thresholds.append(None)
            continue
        try:
            value = int(item)
        except ValueError:
            value = ANY_PRIORITY + 1
        if not MOST_IMPORTANT_PRIORITY <= value <= ANY_PRIORITY:
            raise argparse.ArgumentTypeError(
                f"{item!r} in {text!r} is not a priority: give whole numbers from "
                f"{MOST_IMPORTANT_PRIORITY} to {ANY_PRIORITY} or 'any', separated by commas"
            )
        thresholds.append(value)
    return thresholds


def _queue(text: str) -> tuple[str, float | None]:
    name, equals, interval = text.rpartition("=") if "=" in text else (text, "", "")
    if queue_name_problem(name) is not None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a queue: give NAME or NAME=SECONDS, the name 1 to "
            f"{MAXIMUM_QUEUE_LENGTH} characters"
        )
    if not equals:
        return name, None
    try:
        return name, _seconds(interval)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"the poll interval in {text!r} must be a positive number of seconds"
        ) from None


def _boolean(text: str) -> bool:
    value = text.strip().lower()
    if value in {"true", "yes", "on", "1"}:
        return True
    if value in {"false", "no", "off", "0"}:
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, not {text!r}")


def _level(text: str) -> str:
    value = text.strip().lower()
    if value not in LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)}, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="que",
        usage="que [options] [module ...]",
        description="Work the jobs of a que queue (PostgreSQL). Each MODULE (a module "
        "name or a .py file) is imported first, so that its job classes are known.",
        epilog="Database: --connection-url, else $DATABASE_URL, else the libpq "
        "environment (PGHOST, PGDATABASE, ...). Logs are JSON lines on stdout. "
        "SIGINT/SIGTERM: stop taking jobs, release buffered ones, let running jobs "
        "finish, exit 0; a second signal exits at once (running jobs roll back).",
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("modules", nargs="*", metavar="module", help="module name or .py file defining job classes")
    add(
        "-i",
        "--poll-interval",
        type=_seconds,
        default=POLL_INTERVAL,
        metavar="SECONDS",
        help="maximum interval between polls of a queue for ready jobs "
        f"(default: {POLL_INTERVAL:g})",
    )
    add(
        "-l",
        "--log-level",
        type=_level,
        default="info",
        metavar="LEVEL",
        help=f"log at this level and above to stdout: {', '.join(LOG_LEVELS)} (default: info)",
    )
    add(
        "-p",
        "--worker-priorities",
        type=_priorities,
        metavar="LIST",
        help="one worker per entry, taking jobs up to that priority; 'any' takes every "
        f"job (default: {_DEFAULT_PRIORITIES})",
    )
    add(
        "-q",
        "--queue-name",
        type=_queue,
        action="append",
        dest="queues",
        metavar="NAME[=SECONDS]",
        help="work jobs of this queue, polled every SECONDS (default: --poll-interval); "
        "repeat for more queues (default: the default queue only)",
    )
    add(
        "-w",
        "--worker-count",
        type=_whole_number(1, "workers"),
        metavar="COUNT",
        help="number of worker threads: pads or trims --worker-priorities with 'any' "
        f"(default: {len(DEFAULT_WORKER_PRIORITIES)})",
    )
    add(
        "-v",
        "--version",
        action="version",
        version=f"que {__version__}",
        help="print que's version and exit",
    )
    add(
        "--connection-url",
        metavar="URL",
        help="database to connect to (default: $DATABASE_URL, else the libpq "
        "environment); must reach PostgreSQL directly, not through PgBouncer "
        "in transaction mode, as it holds the advisory locks",
    )
    add(
        "--log-internals",
        action="store_true",
        help="also log the worker pool's internal events (polls, notifications, "
        "locks); verbose, for debugging",
    )
    add(
        "--maximum-buffer-size",
        type=_whole_number(0, "jobs"),
        default=MAXIMUM_BUFFER_SIZE,
        metavar="SIZE",
        help="jobs to lock and hold in this process awaiting a worker "
        f"(default: {MAXIMUM_BUFFER_SIZE})",
    )
    add(
        "--minimum-buffer-size",
        type=_whole_number(0, "jobs"),
        default=MINIMUM_BUFFER_SIZE,
        metavar="SIZE",
        help="between poll intervals, poll again only once fewer jobs than this are "
        f"buffered, or none is and a worker waits (default: {MINIMUM_BUFFER_SIZE})",
    )
    add(
        "--wait-period",
        type=_milliseconds,
        default=WAIT_PERIOD * 1000,
        metavar="MILLISECONDS",
        help="longest wait between checks of finished jobs, notifications and polls "
        f"(default: {WAIT_PERIOD * 1000:g})",
    )
    add(
        "--listen",
        type=_boolean,
        nargs="?",
        const=True,
        default=True,
        metavar="BOOL",
        help="take new jobs as LISTEN/NOTIFY announces them (default: true); false: only poll",
    )
    add("--pidfile", metavar="PATH", help="write the process id to PATH while running")
    add(
        "--shutdown-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="after SIGINT/SIGTERM, wait at most this long for running jobs, then exit "
        "with code 1 without committing them (default: wait for them)",
    )
    return parser


@dataclass
class Options:
    """What the command line asked for."""

    settings: PoolSettings
    modules: list[str] = field(default_factory=list)
    log_level: str = "info"
    log_internals: bool = False
    connection_url: str | None = None
    pidfile: str | None = None
    shutdown_timeout: float | None = None


def parse_args(argv: Sequence[str]) -> Options:
    """Options from the command line; ``UsageError`` for bad values.

    ``-h`` and ``-v`` raise ``SystemExit(0)`` after printing.
    """
    args = build_parser().parse_intermixed_args(list(argv))
    queues: dict[str, float | None] = {}
    for name, interval in args.queues or []:
        if name in queues:
            raise UsageError(
                f"argument -q/--queue-name: queue {name!r} is given twice (see que --help)"
            )
        queues[name] = interval
    try:
        settings = PoolSettings(
            worker_priorities=worker_priorities(args.worker_priorities, args.worker_count),
            queues=queues,
            poll_interval=args.poll_interval,
            maximum_buffer_size=args.maximum_buffer_size,
            minimum_buffer_size=args.minimum_buffer_size,
            wait_period=args.wait_period / 1000,
            listen=args.listen,
        )
    except ValueError as error:
        raise UsageError(f"{error} (see que --help)") from None
    return Options(
        settings=settings,
        modules=args.modules,
        log_level=args.log_level,
        log_internals=args.log_internals,
        connection_url=args.connection_url,
        pidfile=args.pidfile,
        shutdown_timeout=args.shutdown_timeout,
    )
