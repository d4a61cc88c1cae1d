"""The plugin as users meet it: a sample project run by pytester in a subprocess."""

from __future__ import annotations

import pytest
from psycopg.conninfo import make_conninfo

SAMPLE_JOBS = """
from que import Job, Que


class Welcome(Job):
    def run(self, user_id):
        Que.execute("INSERT INTO sent (user_id) VALUES (%s)", [user_id])


class Flaky(Job):
    def run(self):
        raise ConnectionError("mail server down")


def sign_up(user_id):
    with Que.transaction():
        Que.execute("CREATE TABLE IF NOT EXISTS sent (user_id int)")
        Welcome.enqueue(user_id)
"""

SAMPLE_TESTS = """
from datetime import timedelta

import pytest
from que import Que
from que_testing import ANY

from sample_jobs import Flaky, Welcome, sign_up


def test_enqueue_and_assert(que_jobs):
    sign_up(7)
    que_jobs.assert_enqueued(Welcome, args=[ANY])
    assert que_jobs.work().succeeded == 1
    assert Que.execute("SELECT user_id FROM sent") == [{"user_id": 7}]


def test_isolated_from_the_previous_test(que_jobs):
    assert len(que_jobs) == 0
    assert Que.execute("SELECT to_regclass('sent') AS t") == [{"t": None}]


@pytest.mark.que(mode="sync")
def test_sync_mode_error_reaches_the_test(que_jobs):
    with pytest.raises(ConnectionError, match="mail server down"):
        Flaky.enqueue()


def test_retry_with_time_travel(que_jobs, que_time):
    Flaky.enqueue()
    assert que_jobs.work().failed == 1
    assert que_jobs.work().ran == 0
    assert que_time.advance_and_work(seconds=4).ran == 1
"""


@pytest.fixture
def sample(pytester, que_database_url):
    pytester.makepyfile(sample_jobs=SAMPLE_JOBS, test_sample=SAMPLE_TESTS)
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    return pytester


def test_a_user_project_passes_with_only_the_plugin(sample):
    result = sample.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_it_works_under_xdist(sample):
    # (pytest-benchmark, where installed, warns under xdist: keep it out)
    result = sample.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "-p", "no:cacheprovider", "-p", "no:benchmark"
    )
    result.assert_outcomes(passed=4)


def test_time_travel_in_the_first_test_leaves_no_frozen_clock_behind(pytester, que_database_url):
    """The plugin imports its parts when first used: a part first imported while
    time is frozen must not keep freezegun's clock once time runs again."""
    pytester.makepyfile(
        test_order="""
from que import Job


class Noop(Job):
    def run(self):
        pass


def test_first_frozen(que_time, que_worker):
    que_time.advance(seconds=1)


def test_then_real_time(que_worker, que_jobs):
    job = Noop.enqueue()
    assert que_worker.wait_for([job.id]) == []
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_failing_assertions_explain_themselves(pytester, que_database_url):
    pytester.makepyfile(
        sample_jobs=SAMPLE_JOBS,
        test_failing="""
from sample_jobs import Welcome, sign_up


def test_wrong_args(que_jobs):
    sign_up(1)
    que_jobs.assert_enqueued(Welcome, args=[2])


def test_nothing_enqueued(que_jobs):
    que_jobs.assert_enqueued(Welcome)


def test_unexpected_job(que_jobs):
    sign_up(3)
    que_jobs.assert_not_enqueued(Welcome)
""",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(
        [
            "E * AssertionError: Expected a job matching job_class='sample_jobs.Welcome', "
            "args=[[]2[]]; found 0.",
            "E * Enqueued jobs (1):",
            "E * sample_jobs.Welcome(args=[[]1[]]) [[]id=*[]]",
            "E * AssertionError: Expected a job matching job_class='sample_jobs.Welcome'; found 0.",
            "E * No jobs are enqueued.*",
            "E * AssertionError: Expected no job matching "
            "job_class='sample_jobs.Welcome'; found 1.",
        ]
    )
    assert "assertions.py" not in result.stdout.str()  # __tracebackhide__ keeps the trace short


def test_no_database_gives_a_clear_message(pytester, monkeypatch):
    monkeypatch.delenv("QUE_TEST_DATABASE_URL", raising=False)
    pytester.makepyfile(test_one="def test_one(que_db):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--postgresql-port",
        "1",
        "--postgresql-exec",
        "/nonexistent/pg_ctl",
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*que_testing found no PostgreSQL server at *:1*--que-dsn*"])
    assert "Traceback" not in result.stdout.str()


def test_que_dsn_option_points_at_a_server(pytester, que_database_url):
    pytester.makepyfile(
        test_one="""
from que import Que

def test_one(que_db):
    assert Que.db_version() == 7
"""
    )
    server = make_conninfo(que_database_url, dbname="postgres")  # this run's own server
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--que-dsn", server)
    result.assert_outcomes(passed=1)


def test_plugin_registers_its_marker_and_options(pytester):
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.que(mode='sync')*"])
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--que-dsn=QUE_DSN*"])
