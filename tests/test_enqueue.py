"""Enqueueing: options, class settings, names, validation and bulk enqueue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import que
from que import ConfigurationError, Job, JobOptionError, Que, SerializationError
from que_testing.fixtures import que_settings


class Plain(Job):
    pass


class Configured(Job):
    queue = "mail"
    priority = 7
    maximum_retry_count = 3


class InheritsConfigured(Configured):
    pass


class CallableSettings(Job):
    queue = staticmethod(lambda: "computed")
    priority = staticmethod(lambda: 42)
    run_at = staticmethod(lambda: timedelta(minutes=10))


class Renamed(Job, name="ChargeCreditCard"):
    pass


def test_args_and_kwargs_are_stored_separately(que_jobs):
    job = Plain.enqueue(1, "two", [3], amount=10, meta={"a": None})
    assert job.attrs["args"] == [1, "two", [3]]
    assert job.attrs["kwargs"] == {"amount": 10, "meta": {"a": None}}
    assert job.attrs["job_class"] == "test_enqueue.Plain"
    assert job.attrs["job_schema_version"] == 2
    que_jobs.assert_enqueued(Plain, args=[1, "two", [3]], kwargs={"amount": 10})


def test_defaults(que_jobs):
    job = Plain.enqueue()
    assert (job.attrs["queue"], job.attrs["priority"], job.attrs["data"]) == ("default", 100, {})
    assert abs(job.attrs["run_at"] - datetime.now(UTC)) < timedelta(seconds=5)


def test_class_settings_are_inherited(que_jobs):
    job = InheritsConfigured.enqueue()
    assert (job.attrs["queue"], job.attrs["priority"]) == ("mail", 7)
    assert job.attrs["job_class"] == "test_enqueue.InheritsConfigured"


def test_callable_settings_are_called(que_jobs):
    job = CallableSettings.enqueue()
    assert (job.attrs["queue"], job.attrs["priority"]) == ("computed", 42)
    expected = datetime.now(UTC) + timedelta(minutes=10)
    assert abs(job.attrs["run_at"] - expected) < timedelta(seconds=5)


def test_job_options_override_class_settings(que_jobs):
    run_at = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    job = Configured.enqueue(
        job_options={
            "queue": "other",
            "priority": 1,
            "run_at": run_at,
            "tags": ["a", "b"],
            "job_class": "Elsewhere",
        }
    )
    assert job.attrs["queue"] == "other"
    assert job.attrs["priority"] == 1
    assert job.attrs["run_at"] == run_at
    assert job.attrs["data"] == {"tags": ["a", "b"]}
    assert job.attrs["job_class"] == "Elsewhere"


def test_run_at_timedelta_is_relative_to_the_clock(que_jobs):
    fixed = datetime(2031, 5, 5, 12, 0, tzinfo=UTC)
    Que.clock = lambda: fixed
    job = Plain.enqueue(job_options={"run_at": timedelta(seconds=90.5)})
    assert job.attrs["run_at"] == fixed + timedelta(seconds=90.5)


def test_default_queue_setting(que_jobs):
    previous = Que.default_queue
    Que.default_queue = "elsewhere"
    try:
        assert Plain.enqueue().attrs["queue"] == "elsewhere"
        assert Configured.enqueue().attrs["queue"] == "mail"
    finally:
        Que.default_queue = previous


def test_setting_the_default_queue_to_none_brings_back_default(que_jobs):
    with que_settings(default_queue="elsewhere"):
        Que.default_queue = None
        assert Que.default_queue == "default"
        assert Plain.enqueue().attrs["queue"] == "default"


@pytest.mark.parametrize(
    ("name", "error"),
    [("", ValueError), ("q" * 101, ValueError), ("q\x00", ValueError), (5, TypeError)],
)
def test_a_default_queue_no_job_could_have_is_refused(que_jobs, name, error):
    with que_settings(default_queue="kept"):
        with pytest.raises(ConfigurationError, match=r"Que\.default_queue") as raised:
            Que.default_queue = name
        assert isinstance(raised.value, error)
        assert Que.default_queue == "kept"


def test_explicit_name(que_jobs):
    assert Renamed.enqueue().attrs["job_class"] == "ChargeCreditCard"


def test_enqueue_by_name_for_a_class_not_loaded_here(que_jobs):
    job = que.enqueue(5, job_options={"job_class": "BillingApp::Charge", "queue": "billing"})
    assert job.attrs["job_class"] == "BillingApp::Charge"
    que_jobs.assert_enqueued("BillingApp::Charge", args=[5], queue="billing")


def test_every_public_name_resolves_and_que_enqueue_stays_the_function(pytester):
    pytester.makepyfile(
        check="""
        import sys
        import que
        assert "psycopg" not in sys.modules, "import que alone loads nothing heavy"
        for name in que.__all__:
            getattr(que, name)
        assert set(que.__all__) <= set(dir(que))
        import que._core.enqueueing  # sets the attribute "_enqueueing", not "enqueue"
        assert callable(que.enqueue) and que.enqueue.__module__ == "que"
    """
    )
    assert pytester.runpython("check.py").ret == 0


def test_enqueue_by_name_requires_the_name(que_jobs):
    with pytest.raises(JobOptionError, match="job_class"):
        que.enqueue(5, job_options={})
    assert len(que_jobs) == 0


def test_enqueue_returns_an_instance_of_the_class(que_jobs):
    job = Configured.enqueue()
    assert isinstance(job, Configured)
    assert job.id == job.attrs["id"]


def test_local_class_without_a_name_is_refused(que_jobs):
    class Local(Job):
        pass

    with pytest.raises(JobOptionError, match="inside a function"):
        Local.enqueue()
    assert len(que_jobs) == 0


def test_local_class_with_a_name_is_fine(que_jobs):
    class Local(Job, name="tests.LocalNamed"):
        pass

    assert Local.enqueue().attrs["job_class"] == "tests.LocalNamed"


@pytest.mark.parametrize(
    ("options", "option", "message"),
    [
        ({"tags": ["t"] * 6}, "tags", "at most 5 tags"),
        ({"tags": ["x" * 99]}, "tags", "too long"),
        ({"tags": "single"}, "tags", "list of strings"),
        ({"tags": [1]}, "tags", "must be strings"),
        ({"queue": "q" * 101}, "queue", "100 characters"),
        ({"queue": ""}, "queue", "non-empty"),
        ({"queue": 3}, "queue", "non-empty string"),
        ({"priority": 32768}, "priority", "smallint"),
        ({"priority": -32769}, "priority", "smallint"),
        ({"priority": "high"}, "priority", "integer"),
        ({"priority": True}, "priority", "integer"),
        ({"job_class": "J" * 201}, "job_class", "200 characters"),
        ({"run_at": datetime(2030, 1, 1)}, "run_at", "timezone-aware"),
        ({"run_at": 60}, "run_at", "timedelta"),
        ({"prority": 1}, "prority", "unknown job option 'prority'"),
    ],
)
def test_bad_options_raise_before_any_sql(que_jobs, options, option, message):
    statements = []
    Que.sql_middleware.append(lambda sql, params, call_next: (statements.append(sql), call_next()))
    try:
        with pytest.raises(JobOptionError, match=message) as raised:
            Plain.enqueue(job_options=options)
    finally:
        Que.sql_middleware.clear()
    assert raised.value.option == option
    assert isinstance(raised.value, ValueError)
    assert statements == []
    assert len(que_jobs) == 0


def test_limits_that_the_database_accepts_are_accepted(que_jobs):
    job = Plain.enqueue(
        job_options={
            "tags": ["x" * 98] * 5,
            "queue": "q" * 100,
            "priority": -32768,
            "job_class": "J" * 200,
        }
    )
    assert job.attrs["data"]["tags"] == ["x" * 98] * 5


@pytest.mark.parametrize(
    "tag", ["x" * 98, "x" * 99, "é" * 98, "é" * 99, '"' * 49, '"' * 50, "\n" * 49, "\n" * 50]
)
def test_tags_are_measured_like_the_database_does(que_db, tag):
    try:
        Plain.enqueue(job_options={"tags": [tag]})
        accepted_here = True
    except JobOptionError:
        accepted_here = False
    try:
        with que_db.transaction():
            Que.execute(
                "INSERT INTO que_jobs (job_class, job_schema_version, data) VALUES ('X', 2, %s)",
                [psycopg.types.json.Jsonb({"tags": [tag]})],
            )
        accepted_there = True
    except psycopg.errors.CheckViolation:
        accepted_there = False
    assert accepted_here == accepted_there


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((object(),), {}), ((), {"when": datetime.now()}), ((float("nan"),), {}), (({1, 2},), {})],
)
def test_unserialisable_arguments_raise_type_error(que_jobs, args, kwargs):
    with pytest.raises(SerializationError, match="cannot be stored as JSON") as raised:
        Plain.enqueue(*args, **kwargs)
    assert isinstance(raised.value, TypeError)
    assert len(que_jobs) == 0


@pytest.mark.parametrize(
    ("enqueue", "error", "message"),
    [
        (lambda: Plain.enqueue("a\x00b"), SerializationError, r"args\[0\] contains a NUL"),
        (
            lambda: Plain.enqueue({"k": ["\udfff"]}),
            SerializationError,
            r"args\[0\]\['k'\]\[0\] contains a lone surrogate \(U\+DFFF\)",
        ),
        (
            lambda: Plain.enqueue(**{"n\x00": 1}),
            SerializationError,
            r"the key 'n\\x00' in kwargs contains a NUL",
        ),
        (
            lambda: Plain.enqueue(job_options={"queue": "q\x00"}),
            JobOptionError,
            "queue .* contains a NUL",
        ),
        (
            lambda: Plain.enqueue(job_options={"queue": "q\ud800"}),
            JobOptionError,
            r"contains a lone surrogate \(U\+D800\)",
        ),
        (
            lambda: Plain.enqueue(job_options={"job_class": "X\udc00"}),
            JobOptionError,
            "job_class .* lone surrogate",
        ),
        (
            lambda: Plain.enqueue(job_options={"tags": ["t\x00"]}),
            JobOptionError,
            "tag .* contains a NUL",
        ),
    ],
    ids=[
        "args NUL",
        "nested surrogate",
        "kwargs key NUL",
        "queue NUL",
        "queue surrogate",
        "job_class surrogate",
        "tag NUL",
    ],
)
def test_text_postgres_cannot_store_is_refused_before_any_sql(que_jobs, enqueue, error, message):
    with pytest.raises(error, match=message):
        enqueue()
    with pytest.raises(error, match=message), Que.bulk_enqueue():
        enqueue()
    assert len(que_jobs) == 0


def test_text_that_only_looks_like_escapes_is_stored_as_given(que_jobs):
    job = Plain.enqueue("\\u0000 \\ud800 😀", job_options={"queue": "😀", "tags": ["😀"]})
    (row,) = Que.jobs()
    assert row["args"] == ["\\u0000 \\ud800 😀"] and row["queue"] == "😀"
    assert job.attrs["args"] == row["args"]


def test_enqueue_joins_the_callers_transaction(que_jobs):
    with pytest.raises(RuntimeError), Que.transaction():
        Plain.enqueue("rolled back")
        raise RuntimeError("abort")
    with Que.transaction():
        Plain.enqueue("kept")
    assert [job.args for job in que_jobs] == [["kept"]]


def test_bulk_enqueue_streams_the_rows_in_one_statement(que_jobs):
    statements = []
    Que.sql_middleware.append(lambda sql, params, call_next: (statements.append(sql), call_next()))
    try:
        with Que.bulk_enqueue(job_options={"queue": "bulk", "priority": 3}) as batch:
            first = Plain.enqueue(1)
            Configured.enqueue(2, job_options={"priority": 9})
            Plain.enqueue(3, flag=True)
            assert len(que_jobs.all()) == 0
    finally:
        Que.sql_middleware.clear()
    assert sum("COPY public.que_jobs" in sql for sql in statements) == 1
    assert not any("INSERT" in sql for sql in statements)
    assert [job.attrs["args"] for job in batch.jobs] == [[1], [2], [3]]
    assert first.id is not None and first.attrs["queue"] == "bulk"
    rows = que_jobs.all()
    assert [(r.queue, r.priority, r.kwargs) for r in rows] == [
        ("bulk", 3, {}),
        ("bulk", 9, {}),
        ("bulk", 3, {"flag": True}),
    ]


def test_bulk_enqueue_stores_values_exactly_as_single_enqueue_does(que_jobs):
    awkward = ["tab\there", "line\nbreak", "back\\slash", 'quote"', "é ✓ 💥", "\\N", None]
    when = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    calls = [
        ((*awkward,), {"nested": {"k\t": awkward}}, {"tags": ["a\tb", "c"]}),
        ((), {}, {"run_at": when, "queue": "q\\1"}),
        ((1.5, True), {}, {"run_at": timedelta(hours=2), "priority": -32768}),
    ]
    singles = [
        Plain.enqueue(*args, **kwargs, job_options=options) for args, kwargs, options in calls
    ]
    with Que.bulk_enqueue() as batch:
        for args, kwargs, options in calls:
            Plain.enqueue(*args, **kwargs, job_options=options)
    stored = {row["id"]: row for row in Que.execute("SELECT * FROM que_jobs")}
    for single, bulk in zip(singles, batch.jobs, strict=True):
        single_row, bulk_row = stored[single.id], stored[bulk.id]
        assert bulk.attrs == bulk_row
        for column in ("args", "kwargs", "data", "queue", "priority", "job_class"):
            assert bulk_row[column] == single_row[column], column
    assert stored[batch.jobs[1].id]["run_at"] == when
    delayed = stored[batch.jobs[2].id]["run_at"] - stored[batch.jobs[0].id]["run_at"]
    assert delayed == timedelta(hours=2)


def test_bulk_enqueue_gives_ids_in_order_and_stamps_jobs_with_the_clock(que_jobs):
    fixed = datetime(2040, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    Que.clock = lambda: fixed
    with Que.bulk_enqueue() as batch:
        for n in range(5):
            Plain.enqueue(n)
    ids = [job.id for job in batch.jobs]
    assert ids == sorted(ids)
    assert [(job.id, job.args, job.run_at) for job in que_jobs.all()] == [
        (job_id, [n], fixed) for n, job_id in enumerate(ids)
    ]


def test_bulk_enqueue_inserts_nothing_when_the_block_fails(que_jobs):
    with pytest.raises(RuntimeError), Que.bulk_enqueue():
        Plain.enqueue(1)
        raise RuntimeError("abort")
    assert len(que_jobs) == 0


def test_bulk_enqueue_validates_each_job_before_inserting(que_jobs):
    with pytest.raises(JobOptionError), Que.bulk_enqueue():
        Plain.enqueue(1)
        Plain.enqueue(2, job_options={"priority": 10**6})
    assert len(que_jobs) == 0


def test_bulk_enqueue_rejects_unknown_options_and_nesting(que_jobs):
    with (
        pytest.raises(JobOptionError, match="unknown job option"),
        Que.bulk_enqueue(job_options={"colour": "red"}),
    ):
        pass
    with pytest.raises(JobOptionError, match="nested"), Que.bulk_enqueue(), Que.bulk_enqueue():
        pass


def test_bulk_enqueue_skips_notify_and_restores_the_setting(que_db):
    with Que.bulk_enqueue():
        Plain.enqueue()
    setting = Que.execute("SELECT current_setting('que.skip_notify', true) AS value")
    assert setting[0]["value"] in ("", None)


def test_database_checks_back_up_the_python_checks(que_db):
    with pytest.raises(psycopg.errors.CheckViolation), que_db.transaction():
        Que.execute(
            "INSERT INTO que_jobs (job_class, job_schema_version, data) VALUES ('X', 2, %s)",
            ['{"tags": ["' + "x" * 99 + '"]}'],
        )


def test_a_job_class_option_that_is_not_a_string_is_refused(que_jobs):
    with pytest.raises(JobOptionError, match="job_class must be a non-empty string"):
        Plain.enqueue(job_options={"job_class": 5})
