"""que_jobs: reading, asserting (and how failures read), capturing, running."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from que import ConfigurationError, Job, Que
from que_testing import ANY


class SendEmail(Job):
    def run(self, user_id, *, template, options=None):
        pass


class Charge(Job):
    queue = "billing"
    priority = 5

    def run(self, amount):
        if amount < 0:
            raise ValueError("negative")


class Chain(Job):
    def run(self, depth):
        if depth:
            Chain.enqueue(depth - 1)


def failure(call) -> str:
    with pytest.raises(AssertionError) as raised:
        call()
    return str(raised.value)


def test_assert_enqueued_returns_the_job(que_jobs):
    SendEmail.enqueue(7, template="welcome", options={"lang": "fr", "bcc": None})
    job = que_jobs.assert_enqueued(SendEmail, args=[7], kwargs={"template": "welcome"})
    assert job.kwargs["options"] == {"lang": "fr", "bcc": None}
    assert job.queue == "default" and job.priority == 100


def test_matching_is_partial_and_recursive(que_jobs):
    SendEmail.enqueue(7, template="welcome", options={"lang": "fr", "bcc": None})
    que_jobs.assert_enqueued(SendEmail, kwargs={"options": {"lang": "fr"}})
    que_jobs.assert_enqueued(SendEmail, args=[ANY], kwargs={"template": ANY})
    que_jobs.assert_enqueued("test_assertions.SendEmail")
    que_jobs.assert_not_enqueued(SendEmail, kwargs={"options": {"lang": "de"}})
    que_jobs.assert_not_enqueued(SendEmail, args=[7, 8])


def test_queue_priority_tags_and_count(que_jobs):
    Charge.enqueue(10, job_options={"tags": ["vip", "eu"]})
    Charge.enqueue(20)
    que_jobs.assert_enqueued(Charge, queue="billing", priority=5, count=2)
    que_jobs.assert_enqueued(Charge, tags=["vip"], count=1)
    assert "Expected 3 job(s)" in failure(lambda: que_jobs.assert_enqueued(Charge, count=3))


def test_run_at_with_a_tolerance(que_jobs, que_time):
    when = que_time.now + timedelta(hours=2)
    SendEmail.enqueue(1, template="t", job_options={"run_at": when})
    que_jobs.assert_enqueued(SendEmail, run_at=when + timedelta(milliseconds=500))
    que_jobs.assert_enqueued(SendEmail, run_at=timedelta(hours=2))
    que_jobs.assert_not_enqueued(SendEmail, run_at=when + timedelta(seconds=3))
    que_jobs.assert_enqueued(
        SendEmail, run_at=when + timedelta(seconds=3), tolerance=timedelta(seconds=5)
    )


def test_failure_lists_what_was_enqueued_instead(que_jobs):
    SendEmail.enqueue(1, template="welcome")
    SendEmail.enqueue(2, template="reset")
    Charge.enqueue(10)
    message = failure(
        lambda: que_jobs.assert_enqueued(SendEmail, args=[3], kwargs={"template": "x"})
    )
    ids = [job.id for job in que_jobs]
    assert message.splitlines() == [
        "Expected a job matching job_class='test_assertions.SendEmail', args=[3], "
        "kwargs={'template': 'x'}; found 0.",
        "Enqueued jobs (3):",
        f"  test_assertions.SendEmail(args=[1], kwargs={{'template': 'welcome'}}) [id={ids[0]}]",
        f"  test_assertions.SendEmail(args=[2], kwargs={{'template': 'reset'}}) [id={ids[1]}]",
        f"  test_assertions.Charge(args=[10], kwargs={{}}) [id={ids[2]}]",
    ]


def test_failure_with_nothing_enqueued_suggests_why(que_jobs):
    message = failure(lambda: que_jobs.assert_enqueued(SendEmail))
    assert "No jobs are enqueued" in message and "sync mode" in message


def test_assert_not_enqueued_lists_the_matches(que_jobs):
    Charge.enqueue(10)
    message = failure(lambda: que_jobs.assert_not_enqueued(Charge, queue="billing"))
    assert message.startswith(
        "Expected no job matching job_class='test_assertions.Charge', queue='billing'; found 1."
    )
    assert "Matching jobs (1):" in message and "Charge(queue='billing')" in message


def test_unknown_criteria_are_refused(que_jobs):
    with pytest.raises(TypeError, match="unknown job field 'arg'"):
        que_jobs.assert_enqueued(SendEmail, arg=[1])


def test_all_of_len_iter_and_clear(que_jobs):
    SendEmail.enqueue(1, template="a")
    Charge.enqueue(5)
    assert len(que_jobs) == 2
    assert [job.job_class for job in que_jobs] == [
        "test_assertions.SendEmail",
        "test_assertions.Charge",
    ]
    assert [job.args for job in que_jobs.of(Charge)] == [[5]]
    que_jobs.clear()
    assert que_jobs.all() == []


def test_capture_sees_only_jobs_enqueued_in_the_block(que_jobs):
    SendEmail.enqueue(1, template="before")
    with que_jobs.capture() as captured:
        SendEmail.enqueue(2, template="inside")
    SendEmail.enqueue(3, template="after")
    assert [job.args for job in captured.all()] == [[2], [3]]  # a live view from the block on
    captured.assert_not_enqueued(SendEmail, args=[1])
    with que_jobs.capture() as empty:
        pass
    assert [job.args for job in empty.all()] == [[3]] or empty.all() == []


def test_work_returns_a_summary(que_jobs):
    Charge.enqueue(1)
    Charge.enqueue(-1)
    summary = que_jobs.work()
    assert (summary.ran, summary.succeeded, summary.failed, summary.remaining) == (2, 1, 1, 1)
    assert [str(error) for error in summary.errors] == ["negative"]


def test_work_options_queue_limit_and_recursion(que_jobs):
    Charge.enqueue(1)
    Chain.enqueue(2)
    assert que_jobs.work(queue="billing").ran == 1
    assert que_jobs.work(recursive=False).ran == 1  # Chain(2) but not the Chain(1) it enqueued
    que_jobs.assert_enqueued(Chain, args=[1])
    assert que_jobs.work(limit=1).ran == 1
    assert que_jobs.work().ran == 1  # the Chain(0) that Chain(1) enqueued
    assert len(que_jobs) == 0
    with pytest.raises(ConfigurationError, match="limit must be") as raised:
        que_jobs.work(limit=-1)
    assert isinstance(raised.value, ValueError)


def test_work_can_include_scheduled_jobs(que_jobs):
    Charge.enqueue(1, job_options={"run_at": datetime(2999, 1, 1, tzinfo=UTC)})
    assert que_jobs.work().ran == 0
    assert que_jobs.work(include_scheduled=True).ran == 1


def test_drain_raises_the_jobs_error(que_jobs):
    Charge.enqueue(-5)
    with pytest.raises(ValueError, match="negative"):
        que_jobs.drain()
    assert que_jobs.assert_enqueued(Charge, error_count=1)


def test_a_job_that_retries_at_once_runs_once_per_call(que_jobs):
    class Again(Job, name="tests.Again"):
        retry_interval = 0

        def run(self):
            raise RuntimeError("again")

    Again.enqueue()
    assert que_jobs.work().ran == 1
    assert Que.jobs()[0]["error_count"] == 1
