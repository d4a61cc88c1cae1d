"""LISTEN/NOTIFY: the jobs the ``que_job_notify`` trigger announces to this locker.

When a ready job is inserted, the trigger picks one listening locker that works
its queue and sends ``{"message_type": "job_available", "queue", "priority",
"id", "run_at"}`` on the channel ``que_listener_<locker backend pid>``. The
locker reads these every wait period; a payload of another shape is logged and
dropped, never fatal.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from que._core import db, sql
from que._core.connection import Connection
from que._core.log import log_event
from que._core.schema import PRIORITIES
from que.worker._buffer import JobKey

CHANNEL_PREFIX = "que_listener_"
MAXIMUM_JOB_ID = 2**63 - 1  # que_jobs.id is a bigint: a larger id names no job
MESSAGE_TYPE = "job_available"


@dataclass(frozen=True)
class Announcement:
    """A job the trigger says is ready, as its notification describes it."""

    id: int
    queue: str
    priority: int
    run_at: datetime

    @property
    def key(self) -> JobKey:
        return JobKey(self.priority, self.run_at, self.id)


def parse(payload: str) -> Announcement:
    """Read a ``job_available`` payload; ``ValueError`` says what is wrong with it."""
    try:
        message = json.loads(payload)
    except ValueError as error:
        raise ValueError(f"not JSON ({error})") from None
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    if message.get("message_type") != MESSAGE_TYPE:
        raise ValueError(f"message_type is {message.get('message_type')!r}, not {MESSAGE_TYPE!r}")
    job_id, queue, priority = message.get("id"), message.get("queue"), message.get("priority")
    if isinstance(job_id, bool) or not isinstance(job_id, int) or not 0 < job_id <= MAXIMUM_JOB_ID:
        raise ValueError(f"id must be a positive bigint, not {job_id!r}")
    if not isinstance(queue, str):
        raise ValueError(f"queue must be a string, not {queue!r}")
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        raise ValueError(f"priority must be a smallint, not {priority!r}")
    run_at = message.get("run_at")
    try:
        parsed_run_at = datetime.fromisoformat(run_at) if isinstance(run_at, str) else None
    except ValueError:
        parsed_run_at = None
    if parsed_run_at is None or parsed_run_at.tzinfo is None:
        raise ValueError(f"run_at must be an ISO 8601 time with a zone, not {run_at!r}")
    return Announcement(job_id, queue, priority, parsed_run_at)


def listen(connection: Connection) -> None:
    """Start receiving this backend's announcements (``que_listener_<pid>``)."""
    db.run(connection, sql.LISTEN_LOCKER)


def unlisten(connection: Connection) -> None:
    db.run(connection, sql.UNLISTEN_ALL)


def receive(connection: Connection, queues: Collection[str]) -> list[Announcement]:
    """The announcements that arrived, without waiting; bad or foreign ones are logged."""
    announcements: list[Announcement] = []
    for notify in connection.notifies(timeout=0):
        if not notify.channel.startswith(CHANNEL_PREFIX):
            continue
        try:
            announcement = parse(notify.payload)
        except ValueError as error:
            log_event(
                logging.WARNING,
                "notification_invalid",
                channel=notify.channel,
                payload=notify.payload[:500],
                error=str(error),
            )
            continue
        if announcement.queue not in queues:
            log_event(
                logging.WARNING,
                "notification_invalid",
                channel=notify.channel,
                payload=notify.payload[:500],
                error=f"queue {announcement.queue!r} is not one this process works",
            )
            continue
        announcements.append(announcement)
    return announcements
