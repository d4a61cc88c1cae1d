"""One clock: every time que uses comes from Que.clock, which tests can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from que import ConfigurationError, Job, Que

FIXED = datetime(2040, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)


class Noop(Job):
    def run(self):
        pass


class Finishes(Job):
    def run(self):
        self.finish()


class Retries(Job):
    def run(self):
        self.retry_in(60)


def test_enqueue_uses_the_clock_for_the_default_run_at(que_db):
    Que.clock = lambda: FIXED
    assert Noop.enqueue().attrs["run_at"] == FIXED


def test_readiness_is_judged_by_the_clock(que_jobs):
    Noop.enqueue(job_options={"run_at": FIXED})
    assert que_jobs.work().ran == 0
    Que.clock = lambda: FIXED
    assert que_jobs.work().ran == 1


def test_retry_in_with_time_travel(que_jobs, que_time):
    Retries.enqueue()
    assert que_jobs.work().ran == 1
    assert que_jobs.work().ran == 0
    que_time.advance(seconds=59)
    assert que_jobs.work().ran == 0
    que_time.advance(seconds=1)
    assert que_jobs.work().ran == 1


def test_scheduled_for_tomorrow_runs_after_a_day(que_jobs, que_time):
    Noop.enqueue(job_options={"run_at": que_time.now + timedelta(days=1)})
    assert que_jobs.work().ran == 0
    assert que_time.advance_and_work(days=1).ran == 1
    assert len(que_jobs) == 0


def test_time_travel_moves_the_stamps_the_database_stores(que_jobs, que_time):
    Finishes.enqueue()
    que_time.advance(hours=5)
    que_jobs.work()
    assert que_jobs.all()[0].finished_at == que_time.now


def test_a_naive_clock_is_refused(que_db):
    Que.clock = lambda: datetime(2040, 1, 1)
    with pytest.raises(ConfigurationError, match="timezone-aware"):
        Noop.enqueue()


def test_time_travel_refuses_to_go_backwards(que_time):
    with pytest.raises(ValueError, match="forward"):
        que_time.advance(seconds=-1)


def test_time_travel_with_a_connection_pool_does_not_hang(que_committed_db, que_jobs, que_time):
    Retries.enqueue()
    assert que_jobs.work().ran == 1
    with que_committed_db.connection(timeout=5) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert que_time.advance_and_work(minutes=1).ran == 1
