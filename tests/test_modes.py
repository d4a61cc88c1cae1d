"""Que.mode: "off" only inserts, "sync" runs jobs inline at enqueue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from que import ConfigurationError, Job, Que, UnknownJobClass
from que._core.config import database_clock


class Records(Job):
    runs: ClassVar[list[tuple[object, ...]]] = []

    def run(self, *args, **kwargs):
        Records.runs.append((args, kwargs, self.error_count, self.id))


class AlwaysSync(Records):
    run_synchronously = True


class Fails(Job):
    def run(self):
        raise ValueError("reaches the caller")


@pytest.fixture(autouse=True)
def _reset():
    Records.runs.clear()


def test_off_is_the_default_and_only_inserts(que_jobs):
    assert Que.mode == "off"
    Records.enqueue(1)
    assert Records.runs == []
    que_jobs.assert_enqueued(Records, args=[1])


def test_sync_runs_inline_and_inserts_nothing(que_jobs, que_sync):
    job = Records.enqueue(1, key="v")
    assert Records.runs == [((1,), {"key": "v"}, 0, None)]
    assert job.resolution == "destroyed"
    assert len(que_jobs) == 0


def test_sync_needs_no_database_connection(que_sync):
    Records.enqueue("no db")
    assert Records.runs[0][0] == ("no db",)


def test_sync_round_trips_arguments_through_json(que_sync):
    Records.enqueue((1, 2), key={"nested": (3,)})
    assert Records.runs == [(([1, 2],), {"key": {"nested": [3]}}, 0, None)]


@pytest.mark.que(mode="sync")
def test_marker_sets_sync_mode(que_jobs):
    assert Que.mode == "sync"
    Records.enqueue()
    assert len(Records.runs) == 1


def test_marker_does_not_leak(que_jobs):
    assert Que.mode == "off"


def test_sync_errors_reach_the_caller_after_handle_error(que_sync):
    notified = []
    Que.error_notifier = lambda error, row: notified.append(error)
    try:
        with pytest.raises(ValueError, match="reaches the caller"):
            Fails.enqueue()
    finally:
        Que.error_notifier = None
    assert [str(error) for error in notified] == ["reaches the caller"]


def test_sync_applies_job_middleware(que_sync):
    seen = []
    Que.job_middleware.append(lambda job, call_next: (seen.append(type(job).__name__), call_next()))
    try:
        Records.enqueue()
    finally:
        Que.job_middleware.clear()
    assert seen == ["Records"] and len(Records.runs) == 1


def test_sync_inserts_a_job_scheduled_in_the_future(que_jobs, que_sync):
    Records.enqueue(job_options={"run_at": timedelta(hours=1)})
    later = datetime.now(UTC) + timedelta(days=1)
    Records.enqueue(job_options={"run_at": later})
    assert Records.runs == []
    assert len(que_jobs) == 2


def test_sync_runs_a_job_scheduled_in_the_past(que_jobs, que_sync):
    Records.enqueue(job_options={"run_at": datetime(2000, 1, 1, tzinfo=UTC)})
    assert len(Records.runs) == 1
    assert len(que_jobs) == 0


def test_sync_judges_scheduled_jobs_by_the_database_clock_when_que_has_none(que_jobs, que_sync):
    Que.clock = database_clock
    Records.enqueue(job_options={"run_at": datetime.now(UTC) + timedelta(minutes=5)})
    Records.enqueue(job_options={"run_at": timedelta(seconds=30)})
    assert Records.runs == []
    Records.enqueue(job_options={"run_at": datetime.now(UTC) - timedelta(seconds=1)})
    assert len(Records.runs) == 1
    assert len(que_jobs) == 2


def test_run_synchronously_class_setting(que_jobs):
    AlwaysSync.enqueue("inline")
    Records.enqueue("stored")
    assert [run[0] for run in Records.runs] == [("inline",)]
    assert [job.args for job in que_jobs] == [["stored"]]


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("on", ValueError),
        ("SYNC", ValueError),
        ("asynchronous", ValueError),
        (None, TypeError),
        (1, TypeError),
    ],
)
def test_invalid_mode_is_refused(mode, error):
    with pytest.raises(ConfigurationError, match=r"Que\.mode must be one of") as raised:
        Que.mode = mode
    assert isinstance(raised.value, error)
    assert Que.mode == "off"


def test_sync_jobs_in_a_bulk_enqueue_run_when_the_block_ends_in_order(que_jobs, que_sync):
    with Que.bulk_enqueue():
        Records.enqueue("first")
        Records.enqueue("second")
        assert Records.runs == []
    assert [run[0] for run in Records.runs] == [("first",), ("second",)]
    assert len(que_jobs) == 0


class FailsAtOnce(Fails):
    run_synchronously = True


def test_a_failing_sync_job_in_a_bulk_enqueue_stops_the_rest_but_loses_no_scheduled_one(
    que_jobs,
):
    with pytest.raises(ValueError, match="reaches the caller"), Que.bulk_enqueue():
        FailsAtOnce.enqueue()
        AlwaysSync.enqueue("not run: after the failure")
        AlwaysSync.enqueue("stored", job_options={"run_at": timedelta(hours=1)})
    assert Records.runs == []
    assert [job.args for job in que_jobs] == [["stored"]]


def test_sync_jobs_in_a_bulk_enqueue_that_raises_never_run(que_jobs):
    with pytest.raises(RuntimeError, match="abort"), Que.bulk_enqueue():
        AlwaysSync.enqueue("never")
        Records.enqueue("never stored")
        raise RuntimeError("abort")
    assert Records.runs == []
    assert len(que_jobs) == 0


def test_sync_enqueue_by_name_runs_the_registered_class(que_sync):
    Que.enqueue(3, job_options={"job_class": Records.job_name})
    assert [run[0] for run in Records.runs] == [(3,)]


def test_sync_enqueue_by_unknown_name_raises(que_sync):
    with pytest.raises(UnknownJobClass, match=r"no\.such\.Job"):
        Que.enqueue(job_options={"job_class": "no.such.Job"})
