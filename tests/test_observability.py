"""Logging, middleware and inspecting the queue."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import UTC, datetime

import pytest

from que import Job, Que


class Quick(Job):
    def run(self):
        pass


class Loud(Job):
    def run(self):
        pass

    def log_level(self, elapsed):
        return "warn" if elapsed >= 0 else "debug"


class Silent(Job):
    def run(self):
        pass

    def log_level(self, elapsed):
        return None


class Breaks(Job):
    def run(self):
        raise RuntimeError("nope")


def events(caplog):
    return [json.loads(record.getMessage()) for record in caplog.records if record.name == "que"]


def test_job_worked_is_a_json_line_with_the_standard_fields(que_jobs, caplog):
    job = Quick.enqueue()
    with caplog.at_level(logging.DEBUG, logger="que"):
        que_jobs.work()
    (event,) = events(caplog)
    assert event["lib"] == "que"
    assert event["hostname"] == socket.gethostname()
    assert event["pid"] == os.getpid()
    assert event["thread"] == threading.get_ident()
    assert event["event"] == "job_worked"
    assert event["job_id"] == job.id
    assert event["job_class"] == "test_observability.Quick"
    assert event["elapsed"] >= 0
    assert caplog.records[0].levelno == logging.DEBUG
    assert caplog.records[0].que == event  # the fields, for structured handlers


def test_log_level_per_job(que_jobs, caplog):
    Loud.enqueue()
    Silent.enqueue()
    with caplog.at_level(logging.DEBUG, logger="que"):
        que_jobs.work()
    assert [(r.levelno, json.loads(r.getMessage())["job_class"]) for r in caplog.records] == [
        (logging.WARNING, "test_observability.Loud")
    ]


def test_job_errored_is_logged_at_error(que_jobs, caplog):
    Breaks.enqueue()
    with caplog.at_level(logging.ERROR, logger="que"):
        que_jobs.work()
    (event,) = events(caplog)
    assert event["event"] == "job_errored"
    assert event["error"] == "RuntimeError: nope"
    assert event["error_count"] == 1


def test_log_formatter_formats_or_suppresses(que_jobs, caplog):
    def odd_jobs_only(data):
        return f"{data['event']} #{data['job_id']}" if data["job_id"] % 2 else None

    Que.log_formatter = odd_jobs_only
    try:
        jobs = [Quick.enqueue() for _ in range(2)]
        with caplog.at_level(logging.DEBUG, logger="que"):
            que_jobs.work()
    finally:
        Que.log_formatter = None
    odd = next(job for job in jobs if job.id % 2)
    assert [record.getMessage() for record in caplog.records] == [f"job_worked #{odd.id}"]


def test_the_library_configures_no_handlers():
    assert logging.getLogger("que").handlers == []


def test_sql_middleware_sees_every_statement_first_added_outermost(que_jobs):
    seen = []

    def outer(sql, params, call_next):
        seen.append("outer")
        call_next()

    def inner(sql, params, call_next):
        seen.append(("inner", " ".join(sql.split())[:27]))
        call_next()

    Que.sql_middleware.extend([outer, inner])
    try:
        Quick.enqueue()
        assert Que.execute("SELECT 1 AS one") == [{"one": 1}]
    finally:
        Que.sql_middleware.clear()
    assert seen == [
        "outer",
        ("inner", "INSERT INTO public.que_jobs"),
        "outer",
        ("inner", "SELECT 1 AS one"),
    ]


def test_sql_middleware_that_skips_call_next_is_an_error(que_db):
    Que.sql_middleware.append(lambda sql, params, call_next: None)
    try:
        with pytest.raises(Exception, match="did not call call_next"):
            Que.execute("SELECT 1")
    finally:
        Que.sql_middleware.clear()


def test_job_stats(que_jobs, que_db):
    first = Quick.enqueue(job_options={"run_at": datetime(2001, 1, 1, tzinfo=UTC)})
    Quick.enqueue()
    failed = Breaks.enqueue()
    Que.execute("UPDATE que_jobs SET error_count = 3 WHERE id = %s", [failed.id])
    Que.execute("SELECT pg_advisory_lock(%s)", [first.id])
    try:
        stats = {row["job_class"]: row for row in Que.job_stats()}
    finally:
        Que.execute("SELECT pg_advisory_unlock(%s)", [first.id])
    quick = stats["test_observability.Quick"]
    assert (quick["count"], quick["count_working"], quick["count_errored"]) == (2, 1, 0)
    assert quick["oldest_run_at"] == datetime(2001, 1, 1, tzinfo=UTC)
    breaks = stats["test_observability.Breaks"]
    assert (breaks["count"], breaks["count_errored"], breaks["highest_error_count"]) == (1, 1, 3)


def test_job_states_lists_locked_jobs(que_jobs):
    locked = Quick.enqueue()
    Quick.enqueue()
    Que.execute("SELECT pg_advisory_lock(%s)", [locked.id])
    try:
        states = Que.job_states()
    finally:
        Que.execute("SELECT pg_advisory_unlock(%s)", [locked.id])
    assert [row["id"] for row in states] == [locked.id]


def test_clear_deletes_every_job(que_jobs):
    Quick.enqueue()
    Breaks.enqueue()
    Que.clear()
    assert len(que_jobs) == 0
