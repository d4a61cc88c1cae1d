"""que_worker: a real worker pool in the background of a test."""

from __future__ import annotations

from datetime import timedelta

import pytest

from que import Job, Que
from que.worker import PoolSettings


class Records(Job):
    def run(self, value):
        Que.execute("INSERT INTO fixture_results (value) VALUES (%s)", [value])


class Fails(Job):
    def run(self):
        raise RuntimeError("always")


@pytest.fixture
def results(que_committed_db):
    Que.execute("CREATE TABLE IF NOT EXISTS fixture_results (value text)")
    yield lambda: [row["value"] for row in Que.execute("SELECT value FROM fixture_results")]
    Que.execute("DROP TABLE fixture_results")


def test_the_worker_runs_committed_jobs(que_worker, results):
    jobs = [Records.enqueue(str(n)) for n in range(5)]
    assert que_worker.wait_for(job.id for job in jobs) == []
    assert sorted(results()) == ["0", "1", "2", "3", "4"]


def test_wait_for_returns_retried_jobs(que_worker):
    job = Fails.enqueue()
    (left,) = que_worker.wait_for([job.id])
    assert left.error_count == 1
    assert left.last_error_message == "RuntimeError: always"


def test_scheduled_jobs_run_after_time_travel(que_worker, que_time, results):
    job = Records.enqueue("later", job_options={"run_at": timedelta(hours=1)})
    assert [left.id for left in que_worker.wait_for([job.id], timeout=0.5)] == [job.id]
    que_time.advance(hours=1)
    assert que_worker.wait_for([job.id]) == []
    assert results() == ["later"]


def test_wait_for_fails_with_what_it_waited_for(que_worker):
    job = Records.enqueue("x", job_options={"queue": "nobody_works_this"})
    with pytest.raises(AssertionError, match=r"did not finish jobs \[\d+\] within 0.3 s"):
        que_worker.wait_for([job.id], timeout=0.3)


class TestOverriddenSettings:
    @pytest.fixture
    def que_worker_settings(self):
        return PoolSettings(worker_priorities=(None,), queues={"special": 0.1}, wait_period=0.01)

    def test_settings_fixture_can_be_overridden(self, que_worker, results):
        job = Records.enqueue("special", job_options={"queue": "special"})
        que_worker.wait_for([job.id])
        assert results() == ["special"]
        assert que_worker.pool.status().workers == 1


def test_no_advisory_locks_are_left_behind(que_committed_db, que_database_url):
    import psycopg

    with psycopg.connect(que_database_url) as connection:
        count = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]
    assert count == 0
