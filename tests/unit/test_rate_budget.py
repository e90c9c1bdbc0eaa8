"""The rate budget keeps every sliding second within ZEGO's limit as ZEGO counts it, on a fake
clock: slots spaced for jitter, taken where the request is written, given up when late."""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time

import pytest

from zego_resume.adapters.rate_budget import (
    CLOCK_ERROR,
    HORIZON,
    SEND_TOLERANCE,
    WINDOW_SECONDS,
    LocalSchedule,
    Reservation,
    SlotDispenser,
    slot_interval,
)

from .fakes import FakeClock, FakeSleep

ZEGO_CALLS_PER_SECOND = 20  # docs/zego-api.md: 20 requests/s per AppId
JITTER = 0.040
FOREVER = math.inf


class Budget:
    """A dispenser over a local schedule, on one fake clock for wall and monotonic time."""

    def __init__(
        self, calls_per_second: int = ZEGO_CALLS_PER_SECOND, *, jitter: float = JITTER, oversleep: float = 0.0
    ) -> None:
        self.clock = FakeClock(1_000.0)
        self.interval = slot_interval(calls_per_second, jitter)
        self.schedule = LocalSchedule(self.interval)
        self.sleep = FakeSleep(self.clock) if not oversleep else _OversleepingSleep(self.clock, oversleep)
        self.dispenser = SlotDispenser(
            self.schedule, clock=self.clock, monotonic=self.clock, sleep=self.sleep
        )

    def starts(self, count: int) -> list[float]:
        """Take `count` turns one after another; the moment each call would be written."""
        starts = []
        for _ in range(count):
            assert self.dispenser.turn(FOREVER)()
            starts.append(self.clock())
        return starts


class _OversleepingSleep:
    """A sleep that wakes `extra` seconds late every `every`-th time, as a thread does when its
    core is busy."""

    def __init__(self, clock: FakeClock, extra: float, every: int = 3) -> None:
        self._clock = clock
        self._extra = extra
        self._every = every
        self._sleeps = 0

    def __call__(self, seconds: float) -> None:
        self._sleeps += 1
        self._clock.advance(seconds + (self._extra if self._sleeps % self._every == 0 else 0.0))


def _most_in_any_window(arrivals: list[float], window: float = WINDOW_SECONDS) -> int:
    """The most arrivals inside any half-open window [t, t + window), as ZEGO counts them."""
    ordered = sorted(arrivals)
    return max(bisect.bisect_left(ordered, start + window) - index for index, start in enumerate(ordered))


def test_the_spacing_leaves_room_for_jitter_lateness_and_clock_error() -> None:
    interval = slot_interval(20, 0.040)
    assert interval == pytest.approx((1.0 + 0.040 + SEND_TOLERANCE + 2 * CLOCK_ERROR) / 20)
    with pytest.raises(ValueError, match="calls_per_second"):
        slot_interval(0, 0.0)
    with pytest.raises(ValueError, match="arrival_jitter"):
        slot_interval(20, -0.001)


def test_starts_are_one_interval_apart_and_the_budget_is_not_wasted() -> None:
    budget = Budget()
    starts = budget.starts(200)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert min(gaps) == pytest.approx(budget.interval, abs=1e-9)
    assert max(gaps) == pytest.approx(budget.interval, abs=1e-9)


def test_no_second_holds_more_than_the_budget_even_when_each_arrival_is_late_by_the_jitter() -> None:
    # Given 400 calls written at their slots
    budget = Budget()
    starts = budget.starts(400)
    # When every other call reaches ZEGO as late as the jitter allows, the rest at once
    arrivals = [start + (JITTER if index % 2 else 0.0) for index, start in enumerate(starts)]
    # Then no sliding second at ZEGO holds more than the budget
    assert _most_in_any_window(arrivals) == ZEGO_CALLS_PER_SECOND


def test_a_call_that_would_go_out_too_late_gives_its_slot_up() -> None:
    # Given callers that wake 30 ms late from every third sleep (more than the send tolerance)
    budget = Budget(oversleep=0.030)
    # When 50 calls go one after another
    starts = budget.starts(50)
    # Then none went out later than the tolerance after a slot of the schedule...
    first = starts[0]
    for start in starts:
        offset = (start - first) % budget.interval
        assert min(offset, budget.interval - offset) <= SEND_TOLERANCE + 1e-9
    # ... so the spacing still holds where the calls were written, and the missed slots are counted
    assert min(b - a for a, b in itertools.pairwise(starts)) >= budget.interval - SEND_TOLERANCE - 1e-9
    assert budget.dispenser.stats.missed > 0
    assert budget.dispenser.stats.max_lateness <= SEND_TOLERANCE


def test_a_caller_that_always_wakes_too_late_gets_no_turn_once_its_latest_start_passes() -> None:
    # Given a caller that wakes 30 ms late from every sleep: no slot can ever be kept
    clock = FakeClock(1_000.0)
    dispenser = SlotDispenser(
        LocalSchedule(slot_interval(20, JITTER)),
        clock=clock,
        monotonic=clock,
        sleep=_OversleepingSleep(clock, 0.030, every=1),
    )
    assert dispenser.turn(FOREVER)()  # the first slot is now: no sleep, no lateness
    # When it asks for a turn that must start within two seconds
    taken = dispenser.turn(clock() + 2.0)()
    # Then it gives up once the latest start has passed, instead of going out late or for ever
    assert taken is False
    assert clock() <= 1_000.0 + 2.0 + 0.1
    assert dispenser.stats.missed > 0


def test_after_an_idle_spell_the_first_call_goes_at_once_and_the_next_ones_are_spaced() -> None:
    budget = Budget()
    budget.starts(5)
    budget.clock.advance(30.0)
    idle_over = budget.clock()
    starts = budget.starts(3)
    assert starts[0] == idle_over
    assert starts[1] - starts[0] == pytest.approx(budget.interval, abs=1e-9)


def test_a_turn_past_its_latest_start_says_no_without_using_a_slot() -> None:
    # Given a schedule whose next free slot is a second away
    budget = Budget(calls_per_second=1, jitter=0.0)
    budget.starts(1)
    now = budget.clock()
    # When a call that must start within 100 ms asks for a turn
    assert budget.dispenser.turn(now + 0.1)() is False
    # Then it did not wait, and the slot is still there for the next call
    assert budget.clock() == now
    assert budget.starts(1)[0] == pytest.approx(now + budget.interval, abs=1e-9)


def test_a_pause_delays_every_later_start() -> None:
    budget = Budget()
    budget.starts(1)
    paused_at = budget.clock()
    budget.dispenser.pause(1.0)
    assert budget.starts(1)[0] >= paused_at + 1.0


def test_a_pause_makes_a_tight_deadline_unreachable() -> None:
    budget = Budget()
    budget.dispenser.pause(1.0)
    assert budget.dispenser.turn(budget.clock() + 0.5)() is False


class CountingSchedule(LocalSchedule):
    """A local schedule that reserves several slots per request, like the fleet's ledger."""

    max_batch = 4

    def __init__(self, interval: float) -> None:
        super().__init__(interval)
        self.requests: list[int] = []

    def reserve(self, count: int, now: float, latest: float) -> Reservation:
        self.requests.append(count)
        return super().reserve(count, now, latest)


def test_expected_calls_share_one_reservation() -> None:
    # Given a schedule that can reserve four slots per request, and four calls announced
    clock = FakeClock(1_000.0)
    schedule = CountingSchedule(slot_interval(20, JITTER))
    dispenser = SlotDispenser(schedule, clock=clock, monotonic=clock, sleep=FakeSleep(clock))
    dispenser.expect(4)
    # When the four calls take their turns, and then a fifth
    for _ in range(5):
        assert dispenser.turn(FOREVER)()
    # Then one request served the first four, and the unannounced fifth took one of its own
    assert schedule.requests == [4, 1]


def test_reserved_slots_that_pass_unused_are_lost_not_given_out_late() -> None:
    # Given four slots reserved for four announced calls, of which only one comes at once
    clock = FakeClock(1_000.0)
    schedule = CountingSchedule(slot_interval(20, JITTER))
    dispenser = SlotDispenser(schedule, clock=clock, monotonic=clock, sleep=FakeSleep(clock))
    dispenser.expect(4)
    assert dispenser.turn(FOREVER)()
    first = clock()
    # When the next call asks a second later, after the other three slots have passed
    clock.advance(1.0)
    assert dispenser.turn(FOREVER)()
    # Then it went at a fresh slot, and the three that passed were counted as lost
    assert clock() == first + 1.0
    assert dispenser.stats.lost == 3


def test_threads_taking_turns_for_real_keep_the_spacing_where_they_write() -> None:
    # Given a real clock, 40 calls/s and four threads each making ten calls
    dispenser = SlotDispenser(LocalSchedule(slot_interval(40, 0.0)))
    interval = slot_interval(40, 0.0)
    written: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        for _ in range(10):
            assert dispenser.turn(FOREVER)()
            with lock:
                written.append(time.time())

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then any two writes are at least an interval less the tolerance apart, however late a thread woke
    ordered = sorted(written)
    assert len(ordered) == 40
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= interval - SEND_TOLERANCE - 0.002


def test_callers_waiting_for_slots_wake_up_about_once_per_call_not_once_per_slot_each() -> None:
    # Given twenty threads sharing 30 calls at 20 calls/s: most of them wait, with the schedule
    # booked beyond the horizon, while the others go out one by one
    sleeps = 0
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        nonlocal sleeps
        with lock:
            sleeps += 1
        time.sleep(seconds)

    dispenser = SlotDispenser(LocalSchedule(slot_interval(20, 0.0)), sleep=sleep)
    left = 30

    def caller() -> None:
        nonlocal left
        while True:
            with lock:
                if left == 0:
                    return
                left -= 1
            assert dispenser.turn(FOREVER)()

    threads = [threading.Thread(target=caller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # Then every call went, and the waiting cost each call a few sleeps, not one per waiting
    # thread for every slot that went by (a CPU cost of its own: ~1 ms per call with 20 waiting)
    assert dispenser.stats.taken == 30
    assert sleeps <= 3 * 30


def test_a_write_found_late_delays_every_later_slot_by_its_excess() -> None:
    # Given a dispenser whose first call took its turn on time
    budget = Budget()
    turn = budget.dispenser.turn(FOREVER)
    assert turn()
    slot = budget.clock()
    # When the kernel says its request left 50 ms after the slot (the thread lost the CPU
    # between the turn and the write)
    budget.clock.advance(0.050)
    turn.written(slot + 0.050)
    # Then the next call starts a whole interval after that write, less the tolerance
    assert budget.dispenser.turn(FOREVER)()
    assert budget.clock() >= slot + 0.050 - SEND_TOLERANCE + budget.interval - 1e-9
    assert budget.dispenser.stats.late == 1


def test_a_write_within_the_tolerance_changes_nothing() -> None:
    budget = Budget()
    turn = budget.dispenser.turn(FOREVER)
    assert turn()
    slot = budget.clock()
    turn.written(slot + SEND_TOLERANCE / 2)
    assert budget.dispenser.turn(FOREVER)()
    assert budget.clock() == pytest.approx(slot + budget.interval)
    assert budget.dispenser.stats.late == 0


def test_no_slot_is_reserved_further_ahead_than_the_horizon() -> None:
    # Given a schedule booked two seconds ahead (other environments, say)
    clock = FakeClock(1_000.0)
    schedule = CountingSchedule(slot_interval(20, JITTER))
    schedule.push(clock() + 2.0)
    reserved_at: list[tuple[float, float]] = []
    original = schedule.reserve

    def reserve(count: int, now: float, latest: float) -> Reservation:
        reservation = original(count, now, latest)
        reserved_at.extend((now, slot) for slot in reservation.slots)
        return reservation

    schedule.reserve = reserve  # type: ignore[method-assign]
    dispenser = SlotDispenser(schedule, clock=clock, monotonic=clock, sleep=FakeSleep(clock))
    # When a call takes its turn
    assert dispenser.turn(FOREVER)()
    # Then it waited until the slot was within the horizon before reserving it
    assert reserved_at
    assert all(slot - now <= HORIZON for now, slot in reserved_at)
    assert clock() == pytest.approx(1_002.0)
