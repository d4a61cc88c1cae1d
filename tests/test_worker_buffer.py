"""The worker pool's pure parts: the job buffer, slots, thresholds, schedules, payloads."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from worker_fixtures import wait_for

from que import ConfigurationError
from que.worker import PoolSettings, worker_priorities
from que.worker._buffer import BufferedJob, JobBuffer, JobKey, Slots
from que.worker._listener import parse
from que.worker._poller import PollResult, PollSchedule
from que.worker.settings import ANY_PRIORITY

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(job_id: int, priority: int = 100, seconds: int = 0) -> BufferedJob:
    return BufferedJob.from_row(
        {"id": job_id, "priority": priority, "run_at": T0 + timedelta(seconds=seconds)}
    )


def ids(jobs: list[BufferedJob]) -> list[int]:
    return [j.id for j in jobs]


class Taker:
    """A worker thread blocked in ``take``, for tests."""

    def __init__(self, buffer: JobBuffer, threshold: int | None) -> None:
        self.job: BufferedJob | None = None
        self.done = threading.Event()
        before = buffer.idle_workers
        self.thread = threading.Thread(target=self._take, args=(buffer, threshold), daemon=True)
        self.thread.start()
        wait_for(
            lambda: buffer.idle_workers > before or self.done.is_set(), what="the worker to wait"
        )

    def _take(self, buffer: JobBuffer, threshold: int | None) -> None:
        self.job = buffer.take(threshold)
        self.done.set()


# -- the buffer ------------------------------------------------------------------------


def test_jobs_come_out_by_priority_then_run_at_then_id():
    buffer = JobBuffer(10)
    assert buffer.push([job(5, 50), job(3, 10, seconds=5), job(4, 10), job(2, 10)]) == []
    assert [buffer.take(None).id for _ in range(4)] == [2, 4, 3, 5]


def test_a_worker_takes_only_jobs_within_its_threshold():
    buffer = JobBuffer(10)
    buffer.push([job(1, 20)])
    taker = Taker(buffer, 10)
    assert not taker.done.is_set() and len(buffer) == 1
    buffer.push([job(2, 10)])
    wait_for(taker.done.is_set)
    assert taker.job is not None and taker.job.id == 2
    assert buffer.take(20).id == 1  # type: ignore[union-attr]


def test_the_least_restrictive_eligible_waiting_worker_is_served_first():
    buffer = JobBuffer(10)
    strict, loose, middle = Taker(buffer, 10), Taker(buffer, None), Taker(buffer, 50)
    buffer.push([job(1, 5)])
    wait_for(loose.done.is_set)
    assert loose.job is not None and loose.job.id == 1
    buffer.push([job(2, 40)])  # the 10-worker cannot take it; the 50-worker can
    wait_for(middle.done.is_set)
    buffer.push([job(3, 100)])  # nobody idle can take it: it waits in the buffer
    assert ids(buffer.clear()) == [3]
    assert not strict.done.is_set()
    buffer.close()
    wait_for(strict.done.is_set)
    assert strict.job is None


def test_a_more_important_job_displaces_the_least_important():
    buffer = JobBuffer(3)
    assert buffer.push([job(1, 100), job(2, 100), job(3, 50)]) == []
    displaced = buffer.push([job(4, 10)])
    assert ids(displaced) == [2]
    assert ids(buffer.push([job(5, 200)])) == [5]  # less important than all: refused
    assert ids(buffer.clear()) == [4, 3, 1]


def test_a_zero_sized_buffer_only_hands_jobs_to_idle_workers():
    buffer = JobBuffer(0)
    assert ids(buffer.push([job(1)])) == [1]
    taker = Taker(buffer, None)
    assert buffer.push([job(2)]) == []
    wait_for(taker.done.is_set)
    assert taker.job is not None and taker.job.id == 2


def test_closing_wakes_idle_workers_and_returns_the_buffer():
    buffer = JobBuffer(5)
    buffer.push([job(1, 100)])
    taker = Taker(buffer, 10)
    assert ids(buffer.close()) == [1]
    wait_for(taker.done.is_set)
    assert taker.job is None
    assert buffer.take(None) is None
    assert ids(buffer.push([job(2)])) == [2]
    assert len(buffer.slots()) == 0


def test_the_buffer_asks_for_more_once_it_dips_below_its_minimum():
    calls = []
    buffer = JobBuffer(5, 2, on_room=lambda: calls.append(len(buffer)))
    buffer.push([job(n) for n in range(1, 5)])
    assert not buffer.hungry
    for _ in range(3):
        buffer.take(None)
    assert calls == [1]  # 3 and 2 jobs left are enough; 1 is not
    assert buffer.hungry


def test_a_waiting_worker_makes_an_empty_buffer_ask_for_more():
    calls = []
    buffer = JobBuffer(5, 0, on_room=lambda: calls.append(1))
    buffer.push([job(1)])
    buffer.take(None)
    assert calls == [] and not buffer.hungry  # nothing buffered, but nobody waits
    Taker(buffer, 10)
    assert calls == [1] and buffer.hungry
    buffer.close()


@pytest.mark.parametrize(("maximum", "minimum"), [(2, 3), (-1, 0), (5, -1)])
def test_buffer_sizes_must_make_sense(maximum, minimum):
    with pytest.raises(ValueError, match="0 <= minimum <= maximum"):
        JobBuffer(maximum, minimum)


# -- slots: what the locker may lock -----------------------------------------------------


def test_slots_are_idle_worker_thresholds_plus_free_places():
    buffer = JobBuffer(2)
    Taker(buffer, 10)
    Taker(buffer, None)
    assert buffer.slots().limits == [10, ANY_PRIORITY, ANY_PRIORITY, ANY_PRIORITY]
    buffer.close()


def test_a_full_buffer_offers_slots_only_to_more_important_jobs():
    buffer = JobBuffer(2)
    buffer.push([job(1, 100), job(2, 50)])
    assert buffer.slots().limits == [49, 99]


@pytest.mark.parametrize(
    ("limits", "priorities", "fits"),
    [
        ([10, ANY_PRIORITY], [5, 7, 9], 2),
        ([10, ANY_PRIORITY], [5, 100], 2),  # 5 fills the 10-slot, keeping "any" for 100
        ([10, 30], [20, 25], 1),  # only the 30-slot takes 20; 25 then fits nowhere
        ([10, 30], [40], 0),
        ([], [1], 0),
        ([ANY_PRIORITY] * 3, [1, 2, 3, 4], 3),
    ],
)
def test_slots_accept_the_prefix_of_jobs_that_fit(limits, priorities, fits):
    assert Slots(limits).accept(priorities) == fits


def test_a_freed_slot_can_be_filled_again():
    slots = Slots([10, 50])
    assert slots.fill(20) == 50
    assert slots.fill(20) is None
    slots.free(50)
    assert slots.fill(20) == 50
    assert slots.limits == [10]


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priorities", "count", "expected"),
    [
        (None, None, (10, 30, 50, None, None, None)),
        (None, 3, (None, None, None)),
        ([20, 30, 40], 6, (20, 30, 40, None, None, None)),
        ([20, 30, 40], 2, (20, 30)),
        ([100, 100, None], None, (100, 100, None)),
    ],
)
def test_worker_count_pads_or_trims_the_priorities_with_any(priorities, count, expected):
    assert worker_priorities(priorities, count) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_priorities": ()}, "at least one worker"),
        ({"worker_priorities": (40000,)}, "worker priority"),
        ({"queues": {"": 1.0}}, "queue name"),
        ({"queues": {"a": 0}}, "poll interval of queue 'a'"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"wait_period": 0}, "wait_period"),
        ({"maximum_buffer_size": -1}, "maximum_buffer_size"),
        ({"maximum_buffer_size": 0}, r"minimum_buffer_size \(2\) cannot be larger"),
        ({"queues": {"q\x00": None}}, "NUL"),
    ],
)
def test_pool_settings_are_validated(options, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        PoolSettings(**options)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"worker_priorities": ("10",)}, "worker priority"),
        ({"queues": {5: None}}, "queue name"),
        ({"poll_interval": "5"}, "poll_interval"),
        ({"maximum_buffer_size": 1.5}, "maximum_buffer_size"),
    ],
)
def test_pool_settings_of_the_wrong_type_are_type_errors(options, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        PoolSettings(**options)
    assert isinstance(raised.value, TypeError)


def test_queues_default_to_the_default_queue_and_the_poll_interval():
    assert PoolSettings(poll_interval=2).queue_intervals("jobs") == {"jobs": 2}
    settings = PoolSettings(queues={"a": None, "b": 0.5})
    assert settings.queue_intervals("default") == {"a": 5.0, "b": 0.5}


# -- polling schedule --------------------------------------------------------------------


def test_a_queue_is_polled_at_once_then_every_interval():
    schedule = PollSchedule({"a": 5.0})
    room = Slots([ANY_PRIORITY])
    assert schedule.due("a", room, now=100.0, hungry=False)
    schedule.polled("a", PollResult([], more=False), room, 100.0, full=True)
    assert not schedule.due("a", room, now=104.9, hungry=True)
    assert schedule.seconds_until_due(now=104.0) == pytest.approx(1.0)
    assert schedule.due("a", room, now=105.0, hungry=False)
    assert not schedule.due("a", Slots([]), now=200.0, hungry=True)  # no room: no point


def test_a_poll_that_left_jobs_behind_repeats_once_the_buffer_is_hungry_and_has_room():
    schedule = PollSchedule({"a": 5.0})
    full = Slots([49])
    schedule.polled("a", PollResult([], more=True), full, 100.0, full=True)
    assert not schedule.due("a", Slots([49]), now=100.1, hungry=True)  # the same room
    assert not schedule.due("a", Slots([49, ANY_PRIORITY]), now=100.1, hungry=False)
    assert schedule.due("a", Slots([49, ANY_PRIORITY]), now=100.1, hungry=True)
    schedule.polled("a", PollResult([], more=False), Slots([]), 100.2, full=False)
    assert not schedule.due("a", Slots([ANY_PRIORITY]), now=100.3, hungry=True)
    schedule.left_jobs("a", Slots([]))  # an announced job did not fit
    assert schedule.due("a", Slots([ANY_PRIORITY]), now=100.3, hungry=True)


def test_a_queue_is_polled_again_when_room_appears_for_priorities_the_last_poll_could_not_take():
    schedule = PollSchedule({"a": 5.0})
    schedule.polled("a", PollResult([], more=False, reach=5), Slots([5]), 100.0, full=True)
    assert not schedule.due("a", Slots([5, 5]), now=100.1, hungry=True)  # no wider reach
    assert not schedule.due("a", Slots([5, ANY_PRIORITY]), now=100.1, hungry=False)
    assert schedule.due("a", Slots([5, ANY_PRIORITY]), now=100.1, hungry=True)
    schedule.polled("a", PollResult([], more=False), Slots([5, ANY_PRIORITY]), 100.2, full=False)
    assert not schedule.due("a", Slots([5, ANY_PRIORITY]), now=100.3, hungry=True)


def key(n: int) -> JobKey:
    return JobKey(100, datetime(2030, 1, 1, tzinfo=UTC), n)


def test_follow_up_polls_resume_where_the_full_walk_passed_held_jobs_until_the_interval_ends():
    schedule = PollSchedule({"a": 5.0})
    assert schedule.start("a", now=100.0) is None  # the first poll walks the whole queue
    schedule.polled(
        "a", PollResult([], more=True, resume_from=key(42)), Slots([]), 100.0, full=True
    )
    assert schedule.start("a", now=101.0) == key(42)
    schedule.polled("a", PollResult([], more=True), Slots([]), 101.0, full=False)
    assert schedule.start("a", now=102.0) == key(42)  # that one passed no held jobs
    schedule.polled(
        "a", PollResult([], more=True, resume_from=key(50)), Slots([]), 102.0, full=False
    )
    assert schedule.start("a", now=103.0) == key(50)
    assert schedule.start("a", now=105.0) is None  # a poll interval since the full walk
    schedule.polled("a", PollResult([], more=True), Slots([]), 105.0, full=True)
    assert schedule.start("a", now=106.0) is None  # that walk passed no held jobs


@pytest.mark.parametrize(
    "forget",
    [
        lambda schedule: schedule.left_jobs("a", Slots([])),
        lambda schedule: schedule.forget_resume_points(),
        lambda schedule: schedule.reset(),
    ],
    ids=["announced jobs left for polling", "jobs let go of", "reconnected"],
)
def test_a_resume_point_is_forgotten_when_ready_jobs_may_lie_before_it(forget):
    schedule = PollSchedule({"a": 5.0, "b": 5.0})
    for queue in ("a", "b"):
        schedule.polled(
            queue, PollResult([], more=True, resume_from=key(42)), Slots([]), 100.0, full=True
        )
    forget(schedule)
    assert schedule.start("a", now=101.0) is None


# -- notification payloads ----------------------------------------------------------------


def payload(**changes: object) -> str:
    message = {
        "message_type": "job_available",
        "queue": "default",
        "priority": 5,
        "id": 42,
        "run_at": "2026-01-01T00:00:00.123456Z",
    }
    message.update(changes)
    return json.dumps({k: v for k, v in message.items() if v is not None})


def test_a_job_available_payload_is_read():
    announcement = parse(payload())
    assert (announcement.id, announcement.queue, announcement.priority) == (42, "default", 5)
    assert announcement.run_at == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        (payload(message_type="job_gone"), "message_type"),
        (payload(id="42"), "id must be"),
        (payload(id=True), "id must be"),
        (payload(queue=3), "queue must be"),
        (payload(priority=70000), "priority must be"),
        (payload(run_at="yesterday"), "run_at must be"),
        (payload(run_at="2026-01-01T00:00:00"), "run_at must be"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)
