"""Adapter: the ZEGO rate budget — when each call may start, so that no sliding second, as ZEGO
counts it where calls arrive, ever holds more calls than the budget.

Starts come from a schedule of slots spaced `interval` apart with no burst (GCRA, "virtual
scheduling"): `LocalSchedule` below for one execution environment's own share, or the fleet's
ledger in DynamoDB (rate_ledger.py) shared by every environment. A call takes its slot at the last
moment, once its connection is open and right before its request is written (zego_client.py);
a call that would go out later than its slot by more than `SEND_TOLERANCE` gives the slot up and
takes another, so that no lateness of ours (a thread waking late, the GIL, a busy core) can
squeeze two calls closer than the schedule allows. A slot given up or left unused is lost, never
handed to another call.

The guarantee (docs/design.md, "Rate limiting"): with spacing

    interval = (1 s + J + SEND_TOLERANCE + 2 * CLOCK_ERROR) / budget

where J is how much later than its write a call may reach ZEGO (ZEGO_ARRIVAL_JITTER_MS), any
budget + 1 consecutive calls arrive more than one second apart, so no sliding second holds more
than the budget. CLOCK_ERROR bounds the disagreement between two environments' clocks; one
environment alone needs none of it.

Written here rather than taken from a rate-limit library: those hand out a bucket's worth of
permits at once and refill it, which puts twice the budget into one sliding second, and none of
them can take the turn where the request is written or share a schedule through DynamoDB.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from zego_resume.ports import Turn

WINDOW_SECONDS = 1.0  # ZEGO counts calls per sliding second
SEND_TOLERANCE = 0.015  # a call written later than its slot by more gives the slot up
CLOCK_ERROR = 0.002  # clocks of two environments agree within this (NTP-disciplined)


def slot_interval(calls_per_second: int, arrival_jitter: float) -> float:
    """Seconds between two starts so that `calls_per_second` holds in every sliding second."""
    if calls_per_second < 1:
        raise ValueError("calls_per_second must be at least 1")
    if arrival_jitter < 0:
        raise ValueError("arrival_jitter must not be negative")
    return (WINDOW_SECONDS + arrival_jitter + SEND_TOLERANCE + 2 * CLOCK_ERROR) / calls_per_second


class SlotSchedule(Protocol):
    """Where slots come from. Times are time.time() values: a shared schedule needs the clock
    every environment agrees on."""

    max_batch: int  # slots one request may reserve

    def reserve(self, count: int, now: float, latest: float) -> list[float]:
        """Up to `count` consecutive slots from the next free one; [] when that lies after
        `latest`. Never raises: a shared schedule that cannot be reached falls back by itself."""
        ...

    def push(self, until: float) -> None:
        """No slot before `until` from now on (ZEGO answered 30002)."""
        ...


class LocalSchedule:
    """Slots for this execution environment alone, in memory."""

    max_batch = 1  # a reservation costs nothing here: take one at a time

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next_free = 0.0
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        return self._interval

    def reserve(self, count: int, now: float, latest: float) -> list[float]:
        with self._lock:
            start = max(self._next_free, now)
            if start > latest:
                return []
            self._next_free = start + count * self._interval
        return [start + index * self._interval for index in range(count)]

    def push(self, until: float) -> None:
        with self._lock:
            self._next_free = max(self._next_free, until)


@dataclass
class BudgetStats:
    """What the turns did since the environment started (for metrics and benchmarks)."""

    taken: int = 0  # calls written within their slot's tolerance
    missed: int = 0  # slots given up because the call would have gone out too late
    lost: int = 0  # slots reserved but never used (they passed, or a pause overtook them)
    max_lateness: float = 0.0  # the latest a call was written after its slot, in seconds


class SlotDispenser:
    """RateBudget over a SlotSchedule: hands slots to calls and times their writes."""

    def __init__(
        self,
        schedule: SlotSchedule,
        *,
        tolerance: float = SEND_TOLERANCE,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._schedule = schedule
        self._tolerance = tolerance
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._lock = threading.Lock()
        self._reserved: deque[float] = deque()  # slots this environment holds, earliest first
        self._expected = 0
        self._paused_until = 0.0
        self.stats = BudgetStats()

    def turn(self, latest_start: float) -> Turn:
        return partial(self._take_turn, latest_start)

    def expect(self, calls: int) -> None:
        with self._lock:
            self._expected = max(0, calls)

    def pause(self, seconds: float) -> None:
        until = self._clock() + seconds
        self._schedule.push(until)
        with self._lock:
            self._paused_until = max(self._paused_until, until)
            while self._reserved and self._reserved[0] < until:
                self._reserved.popleft()
                self.stats.lost += 1

    def _take_turn(self, latest_start: float) -> bool:
        """Wait for a slot and answer True at it; False when none comes before `latest_start`
        (a time.monotonic() value)."""
        latest = latest_start + (self._clock() - self._monotonic())
        while True:
            slot = self._next_slot(latest)
            if slot is None:
                return False
            wait = slot - self._clock()
            if wait > 0:
                self._sleep(wait)
            now = self._clock()
            with self._lock:
                if slot < self._paused_until:  # a 30002 came while this call waited
                    self.stats.lost += 1
                    continue
                lateness = now - slot
                if lateness <= self._tolerance:
                    self.stats.taken += 1
                    self.stats.max_lateness = max(self.stats.max_lateness, lateness)
                    return True
                self.stats.missed += 1

    def _next_slot(self, latest: float) -> float | None:
        with self._lock:
            now = self._clock()
            while self._reserved and self._reserved[0] < now - self._tolerance:
                self._reserved.popleft()
                self.stats.lost += 1
            if not self._reserved:
                count = max(1, min(self._schedule.max_batch, self._expected))
                # Under the lock on purpose: the callers waiting here would only ask for slots
                # of their own; this way one request serves them all.
                self._reserved.extend(self._schedule.reserve(count, now, latest))
            if not self._reserved or self._reserved[0] > latest:
                return None
            self._expected = max(0, self._expected - 1)
            return self._reserved.popleft()
