"""The pacer keeps every sliding second within ZEGO's budget, on a fake clock."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time

import pytest

from zego_resume.pacing import CallPacer

from .fakes import FakeClock, FakeSleep

ZEGO_CALLS_PER_SECOND = 20  # ZEGO-API.md: 20 requests/s per AppId
FOREVER = math.inf


def _pacer(calls_per_second: int = ZEGO_CALLS_PER_SECOND) -> tuple[CallPacer, FakeClock, FakeSleep]:
    clock = FakeClock(100.0)
    sleep = FakeSleep(clock)
    return CallPacer(calls_per_second, clock=clock, sleep=sleep), clock, sleep


def _starts(pacer: CallPacer, clock: FakeClock, count: int) -> list[float]:
    starts = []
    for _ in range(count):
        assert pacer.acquire(FOREVER)
        starts.append(clock())  # the fake sleep moved the clock to the granted slot
    return starts


def test_starts_are_at_least_one_interval_apart() -> None:
    pacer, clock, _ = _pacer(20)
    starts = _starts(pacer, clock, 200)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) >= 0.05 - 1e-9


def test_no_one_second_window_holds_more_than_the_budget() -> None:
    # Given a pacer for 20 calls/s and a caller that asks for 200 calls as fast as it can
    pacer, clock, _ = _pacer(20)
    # When every call takes its slot
    starts = _starts(pacer, clock, 200)
    # Then every closed one-second window, wherever it begins, holds at most 20 starts
    for index, start in enumerate(starts):
        in_window = bisect.bisect_right(starts, start + 1.0) - index
        assert in_window <= 20, f"{in_window} starts in [{start}, {start + 1.0}]"


def test_the_budget_is_not_wasted() -> None:
    # Spacing must not be so cautious that 200 calls take much longer than 10 s.
    pacer, clock, _ = _pacer(20)
    starts = _starts(pacer, clock, 200)
    assert starts[-1] - starts[0] < 12.0


def test_the_window_holds_when_callers_arrive_in_bursts() -> None:
    # Given callers that come in bursts of 30 every 1.3 s (the clock moves between bursts)
    pacer, clock, _ = _pacer(20)
    starts: list[float] = []
    for _ in range(8):
        starts.extend(_starts(pacer, clock, 30))
        clock.advance(1.3)
    for index, start in enumerate(starts):
        assert bisect.bisect_right(starts, start + 1.0) - index <= 20


def test_acquire_refuses_a_slot_past_the_latest_start_without_reserving_it() -> None:
    # Given one call started now, so the next slot is one interval away
    pacer, clock, sleep = _pacer(20)
    assert pacer.acquire(FOREVER)
    first = clock()
    # When a caller that must start before that slot asks
    refused = pacer.acquire(latest_start=first + 0.01)
    # Then it is refused at once, without sleeping
    assert refused is False
    assert sleep.delays == []
    # And the slot is still free for the next caller
    assert pacer.acquire(FOREVER)
    assert clock() == pytest.approx(first + 0.05)


@pytest.mark.parametrize("calls_per_second", [1, 3, 20])
def test_a_refused_acquire_leaves_the_schedule_as_it_was(calls_per_second: int) -> None:
    # Given two identical pacers, fed the same calls
    control, control_clock, _ = _pacer(calls_per_second)
    pacer, clock, _ = _pacer(calls_per_second)
    _starts(control, control_clock, calls_per_second + 1)
    _starts(pacer, clock, calls_per_second + 1)
    # When one of them also refuses a caller whose deadline is too close
    assert pacer.acquire(latest_start=clock()) is False
    # Then both go on granting exactly the same slots
    assert _starts(pacer, clock, 2 * calls_per_second) == _starts(
        control, control_clock, 2 * calls_per_second
    )


def test_pause_delays_the_next_start() -> None:
    # Given a pacer that has just started a call
    pacer, clock, _ = _pacer(20)
    assert pacer.acquire(FOREVER)
    paused_at = clock()
    # When ZEGO says 30002 and the pacer is paused for a second
    pacer.pause(1.0)
    # Then the next call starts no earlier than a second later
    assert pacer.acquire(FOREVER)
    assert clock() >= paused_at + 1.0


def test_a_pause_makes_a_tight_deadline_unreachable() -> None:
    pacer, clock, _ = _pacer(20)
    pacer.pause(5.0)
    assert pacer.acquire(latest_start=clock() + 1.0) is False


def test_a_pacer_needs_a_positive_rate() -> None:
    with pytest.raises(ValueError, match="calls_per_second"):
        CallPacer(0)


class _OversleepingSleep:
    """A sleep that wakes late by `extra` seconds, as a thread does when its core is busy."""

    def __init__(self, clock: FakeClock, extra: float) -> None:
        self._clock = clock
        self._extra = extra

    def __call__(self, seconds: float) -> None:
        self._clock.advance(seconds + self._extra)


def test_a_late_wake_up_does_not_squeeze_the_next_start_closer() -> None:
    # Given a pacer whose callers wake 70 ms late from every sleep (longer than the interval)
    clock = FakeClock(100.0)
    pacer = CallPacer(20, clock=clock, sleep=_OversleepingSleep(clock, 0.07))
    # When 100 calls go one after another
    starts = _starts(pacer, clock, 100)
    # Then spacing and the window are measured from when calls really went
    assert min(later - earlier for earlier, later in itertools.pairwise(starts)) >= 0.05 - 1e-9
    for index, start in enumerate(starts):
        assert bisect.bisect_right(starts, start + 1.0) - index <= 20


def test_waiting_callers_are_served_in_the_order_they_came() -> None:
    # Given a caller at the head of the line, held in its pacing sleep until the test lets go
    clock = FakeClock(100.0)
    release = threading.Event()

    def held_sleep(seconds: float) -> None:
        release.wait(timeout=5)
        clock.advance(seconds)

    pacer = CallPacer(20, clock=clock, sleep=held_sleep)
    assert pacer.acquire(FOREVER)  # the first call goes at once
    served: list[str] = []

    def caller(name: str) -> None:
        assert pacer.acquire(FOREVER)
        served.append(name)

    threads = [threading.Thread(target=caller, args=(name,)) for name in ("first", "second", "third")]
    for queued, thread in enumerate(threads):
        thread.start()
        deadline = time.monotonic() + 5
        # wait until this caller is in line: the first is the head (asleep), the others queue
        while not (pacer._busy and len(pacer._queue) == queued) and time.monotonic() < deadline:
            time.sleep(0.001)

    # When the head wakes
    release.set()
    for thread in threads:
        thread.join(timeout=5)

    # Then the callers went in the order they came
    assert served == ["first", "second", "third"]
