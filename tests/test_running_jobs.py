"""Running a job: resolve helpers, errors, retries, expiry and notification."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from que import ConfigurationError, Job, JobDefinitionError, Que, default_retry_interval

T0 = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(que_db):
    """A settable clock, so retry times are exact."""
    now = {"value": T0}
    Que.clock = lambda: now["value"]
    return now


@pytest.fixture
def notified():
    errors = []
    Que.error_notifier = lambda error, row: errors.append((error, row))
    yield errors
    Que.error_notifier = None


def only_job():
    (row,) = Que.jobs()
    return row


class Succeeds(Job):
    ran: ClassVar[list[object]] = []

    def run(self, *args, **kwargs):
        Succeeds.ran.append((args, kwargs))


class Fails(Job):
    def run(self, message="boom"):
        raise ValueError(message)


class Finishes(Job):
    def run(self):
        self.finish()


class Expires(Job):
    def run(self):
        self.expire()


class RetriesLater(Job):
    def run(self, seconds):
        self.retry_in(seconds)


class Destroys(Job):
    def run(self):
        with Que.transaction():
            Que.execute("CREATE TEMP TABLE IF NOT EXISTS side_effect (n int)")
            Que.execute("INSERT INTO side_effect VALUES (1)")
            self.destroy()


class FinishesByDefault(Job):
    def run(self):
        pass

    def default_resolve_action(self):
        self.finish()


def test_a_successful_job_is_destroyed_by_default(que_jobs):
    Succeeds.ran.clear()
    Succeeds.enqueue(1, x=2)
    summary = que_jobs.work()
    assert (summary.ran, summary.succeeded, summary.remaining) == (1, 1, 0)
    assert Succeeds.ran == [((1,), {"x": 2})]
    assert Que.jobs() == []


def test_destroy_inside_the_jobs_transaction(que_jobs):
    Destroys.enqueue()
    que_jobs.work()
    assert Que.jobs() == []
    assert Que.execute("SELECT count(*) AS n FROM side_effect") == [{"n": 1}]


def test_finish_keeps_the_row(que_jobs, clock):
    Finishes.enqueue()
    que_jobs.work()
    assert only_job()["finished_at"] == T0


def test_default_resolve_action_can_be_overridden(que_jobs, clock):
    FinishesByDefault.enqueue()
    que_jobs.work()
    assert only_job()["finished_at"] == T0


def test_expire_counts_an_error_and_keeps_the_row(que_jobs, clock):
    Expires.enqueue()
    que_jobs.work()
    row = only_job()
    assert (row["expired_at"], row["error_count"], row["last_error_message"]) == (T0, 1, None)


@pytest.mark.parametrize("seconds", [10, 0.5, timedelta(minutes=2)])
def test_retry_in_reschedules_without_an_error(que_jobs, clock, seconds):
    RetriesLater.enqueue(seconds if not isinstance(seconds, timedelta) else 120)
    que_jobs.work()
    row = only_job()
    delay = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    assert row["run_at"] == T0 + timedelta(seconds=delay)
    assert (row["error_count"], row["last_error_message"]) == (1, None)


def test_default_retry_intervals():
    assert [default_retry_interval(n) for n in (1, 2, 3, 4)] == [4, 19, 84, 259]


def test_errors_are_retried_with_que_back_off(que_jobs, clock, notified):
    Fails.enqueue("kaput")
    delays = []
    for _ in range(4):
        summary = que_jobs.work()
        assert summary.failed == 1
        row = only_job()
        delays.append((row["run_at"] - clock["value"]).total_seconds())
        clock["value"] = row["run_at"]
    assert delays == [4, 19, 84, 259]
    assert row["error_count"] == 4
    assert row["last_error_message"] == "ValueError: kaput"
    assert "Traceback" in row["last_error_backtrace"]
    assert "raise ValueError(message)" in row["last_error_backtrace"]
    assert [str(error) for error, _ in notified] == ["kaput"] * 4
    assert notified[0][1]["job_class"] == "test_running_jobs.Fails"


def test_a_job_runs_at_most_sixteen_times_by_default(que_jobs, clock):
    Fails.enqueue()
    runs = 0
    while (row := only_job())["expired_at"] is None:
        clock["value"] = row["run_at"]
        runs += que_jobs.work().ran
    assert runs == 16
    assert row["error_count"] == 16
    assert row["last_error_message"] == "ValueError: boom"


class FixedInterval(Job):
    retry_interval = 5
    maximum_retry_count = 2

    def run(self):
        raise KeyError("k")


class GrowingInterval(Job):
    retry_interval = staticmethod(lambda count: count * 30)
    maximum_retry_count = None

    def run(self):
        raise RuntimeError("again")


def test_custom_interval_and_maximum(que_jobs, clock):
    FixedInterval.enqueue()
    for expected_delay in (5, 5):
        que_jobs.work()
        row = only_job()
        assert (row["run_at"] - clock["value"]).total_seconds() == expected_delay
        clock["value"] = row["run_at"]
    que_jobs.work()  # third failure: 3 > 2
    row = only_job()
    assert row["expired_at"] == clock["value"]
    assert row["error_count"] == 3


def test_callable_interval_and_no_maximum(que_jobs, clock):
    GrowingInterval.enqueue()
    for expected_delay in (30, 60, 90):
        que_jobs.work()
        row = only_job()
        assert (row["run_at"] - clock["value"]).total_seconds() == expected_delay
        clock["value"] = row["run_at"]
    assert row["expired_at"] is None


class Annoying(Exception):
    pass


class CustomHandling(Job):
    def run(self, kind):
        if kind == "annoying":
            raise Annoying("quiet")
        raise RuntimeError("loud")

    def handle_error(self, error):
        if isinstance(error, Annoying):
            self.retry_in(10)
            return False
        self.expire()
        return self.error_count > 0


def test_handle_error_decides_and_its_result_decides_notification(que_jobs, clock, notified):
    CustomHandling.enqueue("annoying")
    CustomHandling.enqueue("loud")
    que_jobs.work()
    rows = {row["args"][0]: row for row in Que.jobs()}
    assert rows["annoying"]["run_at"] == T0 + timedelta(seconds=10)
    assert rows["annoying"]["last_error_message"] == "Annoying: quiet"
    assert rows["loud"]["expired_at"] == T0
    assert [str(error) for error, _ in notified] == ["loud"]


class SeesErrorCount(Job):
    seen: ClassVar[list[int]] = []

    def run(self):
        raise RuntimeError("x")

    def handle_error(self, error):
        SeesErrorCount.seen.append(self.error_count)
        return super().handle_error(error)


def test_error_count_counts_the_current_failure_in_handle_error(que_jobs, clock):
    SeesErrorCount.seen.clear()
    SeesErrorCount.enqueue()
    que_jobs.work()
    clock["value"] += timedelta(hours=1)
    que_jobs.work()
    assert SeesErrorCount.seen == [1, 2]
    assert only_job()["error_count"] == 2


class BrokenHandler(Job):
    def run(self):
        raise RuntimeError("first")

    def handle_error(self, error):
        raise LookupError("second")


def test_a_failing_handle_error_notifies_both_and_retries(que_jobs, clock, notified):
    BrokenHandler.enqueue()
    que_jobs.work()
    assert [type(error) for error, _ in notified] == [LookupError, RuntimeError]  # as Ruby
    row = only_job()
    assert row["run_at"] == T0 + timedelta(seconds=4)
    assert row["error_count"] == 1


def test_a_failing_notifier_is_logged_not_raised(que_jobs, caplog):
    def notifier(error, row):
        raise OSError("notifier down")

    Que.error_notifier = notifier
    try:
        Fails.enqueue()
        with caplog.at_level(logging.ERROR, logger="que"):
            summary = que_jobs.work()
    finally:
        Que.error_notifier = None
    assert summary.failed == 1
    events = [json.loads(record.getMessage())["event"] for record in caplog.records]
    assert "error_notifier_failed" in events


def test_unknown_job_class_is_retried_then_expired(que_jobs, clock, notified):
    Que.enqueue(job_options={"job_class": "no.such.module.Job"})
    que_jobs.work()
    row = only_job()
    assert row["error_count"] == 1
    assert row["last_error_message"].startswith("UnknownJobClass: no job class named")
    while row["expired_at"] is None:
        clock["value"] = row["run_at"]
        que_jobs.work()
        row = only_job()
    assert row["error_count"] == 16


def test_error_message_and_backtrace_are_cut_to_fit(que_jobs, clock):
    Fails.enqueue("m" * 2000)
    que_jobs.work()
    row = only_job()
    assert len(row["last_error_message"]) == 500
    assert row["last_error_message"].startswith("ValueError: mmm")
    assert len(row["last_error_backtrace"]) <= 10000


class FailsWithUnstorableText(Job):
    def run(self):
        raise ValueError("NUL \x00, lone surrogate \ud800")


def test_an_error_message_postgres_cannot_store_is_recorded_with_replacement_characters(
    que_jobs, clock
):
    FailsWithUnstorableText.enqueue()
    que_jobs.work()
    row = only_job()
    assert row["error_count"] == 1
    assert row["last_error_message"] == "ValueError: NUL \ufffd, lone surrogate \ufffd"
    assert "\ufffd, lone surrogate \ufffd" in row["last_error_backtrace"]


class Writes(Job):
    def run(self):
        Que.execute("CREATE TEMP TABLE IF NOT EXISTS writes (n int)")
        Que.execute("INSERT INTO writes VALUES (1)")
        raise RuntimeError("after writing")


def test_a_failed_jobs_writes_are_rolled_back(que_jobs, clock):
    Que.execute("CREATE TEMP TABLE writes (n int)")
    Writes.enqueue()
    que_jobs.work()
    assert Que.execute("SELECT count(*) AS n FROM writes") == [{"n": 0}]
    assert only_job()["error_count"] == 1


class Interrupts(Job):
    def run(self):
        raise KeyboardInterrupt


def test_base_exceptions_are_not_swallowed(que_jobs):
    Interrupts.enqueue()
    with pytest.raises(KeyboardInterrupt):
        que_jobs.work()
    assert only_job()["error_count"] == 0


def test_reraise_records_then_raises(que_jobs, clock):
    Fails.enqueue("loud")
    with pytest.raises(ValueError, match="loud"):
        que_jobs.work(reraise=True)
    assert only_job()["error_count"] == 1


def test_job_middleware_wraps_runs_first_added_outermost(que_jobs):
    calls = []

    def outer(job, call_next):
        calls.append(("outer", type(job).__name__))
        call_next()
        calls.append("outer done")

    def inner(job, call_next):
        calls.append("inner")
        call_next()

    Que.job_middleware.extend([outer, inner])
    try:
        Succeeds.enqueue()
        que_jobs.work()
    finally:
        Que.job_middleware.clear()
    assert calls == [("outer", "Succeeds"), "inner", "outer done"]


class LeavesItAlone(Job):
    def run(self):
        raise RuntimeError("unhandled")

    def handle_error(self, error):
        return True


def test_handle_error_that_resolves_nothing_falls_back_to_the_default_retry(que_jobs, clock):
    LeavesItAlone.enqueue()
    que_jobs.work()
    row = only_job()
    assert (row["error_count"], row["run_at"]) == (1, T0 + timedelta(seconds=4))


def test_job_middleware_that_skips_call_next_counts_as_an_error(que_jobs, clock):
    Succeeds.ran.clear()
    Que.job_middleware.append(lambda job, call_next: None)
    try:
        Succeeds.enqueue()
        summary = que_jobs.work()
    finally:
        Que.job_middleware.clear()
    assert Succeeds.ran == []
    assert summary.failed == 1
    assert only_job()["last_error_message"].startswith("Error: a job middleware did not call")


def test_an_async_run_is_refused_when_the_class_is_defined():
    with pytest.raises(JobDefinitionError, match=r"AsyncRun.run is an async function.*def run"):

        class AsyncRun(Job):
            async def run(self):
                pass

    assert issubclass(JobDefinitionError, TypeError)


def insert_row(job_class):
    Que.execute("INSERT INTO que_jobs (job_class, job_schema_version) VALUES (%s, 2)", [job_class])


def test_a_row_cannot_make_the_runner_import_a_module_outside_the_allowed_prefixes(
    que_jobs, monkeypatch
):
    monkeypatch.delitem(sys.modules, "this", raising=False)
    insert_row("this.Anything")
    que_jobs.work()
    assert "this" not in sys.modules
    assert only_job()["last_error_message"].startswith(
        "UnknownJobClass: no job class named 'this.Anything': import the module"
    )
    assert only_job()["error_count"] == 1


def test_an_allowed_module_is_imported_to_find_a_class_and_its_failure_is_recorded(
    que_jobs, monkeypatch, tmp_path
):
    (tmp_path / "allowed_jobs.py").write_text(
        "from que import Job\n\n"
        "class Found(Job, name='allowed_jobs.Found'):\n"
        "    def run(self):\n"
        "        self.finish()\n"
    )
    (tmp_path / "allowed_broken.py").write_text("raise ValueError('broken at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(Que, "job_module_prefixes", ["allowed_jobs", "allowed_broken"])
    insert_row("allowed_jobs.Found")
    insert_row("allowed_broken.Job")
    que_jobs.work()
    found, broken = sorted(Que.jobs(), key=lambda row: row["id"])
    assert found["finished_at"] is not None
    assert broken["last_error_message"].startswith(
        "UnknownJobClass: no job class named 'allowed_broken.Job': importing "
        "'allowed_broken' raised ValueError: broken at import; fix the module or"
    )


@pytest.mark.parametrize("prefixes", ["myapp.jobs", ["myapp..jobs"], [3]])
def test_job_module_prefixes_must_be_module_names(prefixes):
    with pytest.raises(ConfigurationError, match="job_module_prefixes"):
        Que.job_module_prefixes = prefixes
