"""Adapter: the ZEGO rate budget — when each call may start, so that no sliding second, as ZEGO
counts it where calls arrive, ever holds more calls than the budget.

Starts come from a schedule of slots spaced `interval` apart with no burst (GCRA, "virtual
scheduling"): `LocalSchedule` below for one execution environment's own share, or the fleet's
ledger in DynamoDB (rate_ledger.py) shared by every environment. A call's start is the moment its
request is written to the socket: it takes its slot once its connection is open, right before the
write (zego_client.py), and says when the write is done. A call that finds itself later than its
slot by more than `SEND_TOLERANCE` before writing gives the slot up and takes another. One found
late only after writing (its thread lost the CPU between the check and the write) delays the whole
schedule by its excess, so the calls after it keep their distance from it. A slot given up or
left unused is lost, never handed to another call.

The guarantee (docs/design.md, "Rate limiting"): with spacing

    interval = (1 s + J + SEND_TOLERANCE + 2 * CLOCK_ERROR) / budget

where J is how much later than its write a call may reach ZEGO (ZEGO_ARRIVAL_JITTER_MS), any
budget + 1 consecutive calls arrive more than one second apart, so no sliding second holds more
than the budget. CLOCK_ERROR bounds the disagreement between two environments' clocks; one
environment alone needs none of it. The delay after a late write reaches every call whose slot is
reserved after it; slots are never reserved more than `HORIZON` ahead, so it covers any call
budget slots later as long as a write is late by less than interval * budget - HORIZON (> 0.5 s).

Written here rather than taken from a rate-limit library: those hand out a bucket's worth of
permits at once and refill it, which puts twice the budget into one sliding second, and none of
them can take the turn where the request is written or share a schedule through DynamoDB.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from zego_resume.ports import Turn

WINDOW_SECONDS = 1.0  # ZEGO counts calls per sliding second
SEND_TOLERANCE = 0.015  # a call written later than its slot by more gives the slot up
CLOCK_ERROR = 0.002  # clocks of two environments agree within this (NTP-disciplined)
HORIZON = 0.5  # no slot is reserved further ahead than this


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

    def reserve(self, count: int, now: float, latest: float) -> Reservation:
        """`count` consecutive slots from the next free one; none when that lies after `latest`.
        Never raises: a shared schedule that cannot be reached falls back by itself."""
        ...

    def delay(self, seconds: float, now: float) -> None:
        """Move every slot not yet reserved `seconds` later (a call was written that late)."""
        ...

    def push(self, until: float) -> None:
        """No slot before `until` from now on (ZEGO answered 30002)."""
        ...

    def take_unavailability(self) -> str | None:
        """Why a shared schedule could not be used since the last call (None: it could, or
        there is none)."""
        ...


@dataclass(frozen=True)
class Reservation:
    slots: list[float]  # empty when the next free slot came after the latest start asked for
    next_free: float  # the schedule's next free slot as the reservation left it


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

    def reserve(self, count: int, now: float, latest: float) -> Reservation:
        with self._lock:
            start = max(self._next_free, now)
            if start > latest:
                return Reservation([], start)
            self._next_free = start + count * self._interval
        return Reservation([start + index * self._interval for index in range(count)], self._next_free)

    def delay(self, seconds: float, now: float) -> None:
        with self._lock:
            self._next_free = max(self._next_free, now) + seconds

    def push(self, until: float) -> None:
        with self._lock:
            self._next_free = max(self._next_free, until)

    def take_unavailability(self) -> str | None:
        return None  # nothing shared to be out of reach


@dataclass
class BudgetStats:
    """What the turns did (for metrics and benchmarks)."""

    taken: int = 0  # calls that took a slot and were written
    missed: int = 0  # slots given up because the call would have gone out too late
    late: int = 0  # calls found late only once written: the schedule was delayed for them
    lost: int = 0  # slots reserved but never used (they passed, or a pause overtook them)
    max_lateness: float = 0.0  # the latest a write ended after its slot, in seconds
    ledger_unavailable: str | None = None  # why the fleet's ledger could not be used, if it could not


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
        self._lock = threading.Lock()  # the state below; never held across a ledger request
        self._reserving = threading.Lock()  # one reservation request at a time
        self._reserved: deque[float] = deque()  # slots this environment holds, earliest first
        self._next_free_seen = 0.0  # the schedule's next free slot, when it was too far ahead
        self._ask_again_at = 0.0  # no reservation request before this (time.time())
        self._expected = 0
        self._paused_until = 0.0
        self.stats = BudgetStats()  # since the environment started
        self._reported = BudgetStats()  # at the last report

    @property
    def schedule(self) -> SlotSchedule:
        return self._schedule

    def take_report(self) -> BudgetStats:
        """What happened since the last report (one per invocation)."""
        with self._lock:
            now, then = self.stats, self._reported
            report = BudgetStats(
                taken=now.taken - then.taken,
                missed=now.missed - then.missed,
                late=now.late - then.late,
                lost=now.lost - then.lost,
                max_lateness=now.max_lateness,
                ledger_unavailable=self._schedule.take_unavailability(),
            )
            self._reported = BudgetStats(now.taken, now.missed, now.late, now.lost, now.max_lateness)
        return report

    def turn(self, latest_start: float) -> Turn:
        return _SlotTurn(self, latest_start)

    def expect(self, calls: int) -> None:
        with self._lock:
            self._expected = max(0, calls)

    def pause(self, seconds: float) -> None:
        until = self._clock() + seconds
        self._schedule.push(until)
        with self._lock:
            self._paused_until = max(self._paused_until, until)
            self._drop_reserved(until)

    def _take_turn(self, latest_start: float) -> float | None:
        """Wait for a slot and answer it at its time; None when none comes before `latest_start`
        (a time.monotonic() value)."""
        latest = latest_start + (self._clock() - self._monotonic())
        while True:
            slot = self._next_slot(latest)
            if slot is None:
                return None
            wait = slot - self._clock()
            if wait > 0:
                self._sleep(wait)
            with self._lock:
                now = self._clock()  # read under the lock: waiting for it must count as lateness
                if slot < self._paused_until:  # a 30002 came while this call waited
                    self.stats.lost += 1
                    continue
                if now - slot <= self._tolerance:
                    self.stats.taken += 1
                    return slot
                self.stats.missed += 1

    def _written(self, slot: float, at: float | None) -> None:
        """The call of `slot` was written `at` (None: just now): if that was later than the
        tolerance, every slot from now on moves later by the excess."""
        now = self._clock()
        lateness = (now if at is None else min(at, now)) - slot
        excess = lateness - self._tolerance
        with self._lock:
            self.stats.max_lateness = max(self.stats.max_lateness, lateness)
            if excess <= 0:
                return
            self.stats.late += 1
            self._drop_reserved(float("inf"))
        self._schedule.delay(excess, now)

    def _drop_reserved(self, before: float) -> None:
        while self._reserved and self._reserved[0] < before:
            self._reserved.popleft()
            self.stats.lost += 1

    def _next_slot(self, latest: float) -> float | None:
        while True:
            with self._lock:
                if (slot := self._pop_reserved(latest)) is not None or self._reserved:
                    return slot
            # One caller at a time asks the schedule for slots, waiting until it may ask, while
            # the others queue on this lock. It is not the state lock: a turn being checked must
            # never wait behind a request to the ledger. Callers waiting each on its own would
            # only ask for slots of their own, and every one of them would wake up each time the
            # schedule moved on: with 20 calls waiting, ~1 ms of CPU per call spent polling.
            if not self._reserving.acquire(timeout=_lock_timeout(latest - self._clock())):
                return None
            try:
                with self._lock:
                    if (slot := self._pop_reserved(latest)) is not None or self._reserved:
                        return slot
                    count = max(1, min(self._schedule.max_batch, self._expected))
                now = self._clock()
                if now < self._ask_again_at:
                    if self._next_free_seen > latest:
                        return None
                    self._sleep(max(0.0, min(self._ask_again_at, latest) - now))
                    now = self._clock()
                reservation = self._schedule.reserve(count, now, min(latest, now + HORIZON))
                # No one here asks again before the next free slot is within HORIZON: a request
                # made earlier could only be refused.
                self._next_free_seen = reservation.next_free
                self._ask_again_at = max(reservation.next_free - HORIZON, now + 0.001)
                with self._lock:
                    self._reserved.extend(reservation.slots)
                    if (slot := self._pop_reserved(latest)) is not None or self._reserved:
                        return slot
                if self._next_free_seen > latest:
                    return None
            finally:
                self._reserving.release()

    def _pop_reserved(self, latest: float) -> float | None:
        """The earliest reserved slot still usable (under the lock), or None: none is reserved,
        or the earliest comes after `latest` (then the caller gets none)."""
        self._drop_reserved(self._clock() - self._tolerance)
        if not self._reserved or self._reserved[0] > latest:
            return None
        self._expected = max(0, self._expected - 1)
        return self._reserved.popleft()


def _lock_timeout(seconds: float) -> float:
    """Lock.acquire's timeout for waiting `seconds`, which may be infinite (-1: for ever)."""
    if seconds == math.inf:
        return -1
    return max(0.0, min(seconds, threading.TIMEOUT_MAX))


class _SlotTurn:
    """One call's turn: taking it waits for a slot; `written` reports the write."""

    __slots__ = ("_dispenser", "_latest_start", "_slot")

    def __init__(self, dispenser: SlotDispenser, latest_start: float) -> None:
        self._dispenser = dispenser
        self._latest_start = latest_start
        self._slot: float | None = None

    def __call__(self) -> bool:
        self._slot = self._dispenser._take_turn(self._latest_start)
        return self._slot is not None

    def written(self, at: float | None) -> None:
        if self._slot is not None:
            self._dispenser._written(self._slot, at)
