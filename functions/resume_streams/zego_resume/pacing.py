"""Adapter: spaces ZEGO calls so no sliding one-second window ever holds more than the budget.

Written here rather than taken from a rate-limit library: those hand out a bucket's worth of
permits at once and refill it, which is right for a fixed window and wrong for ZEGO's sliding
one — a full bucket spent at the end of one second and another at the start of the next puts
twice the budget inside one sliding second. This pacer does two small things instead: it spaces
starts evenly (1/N s apart), and it never starts the (N+1)-th call until a second and a margin
have passed since the N-th call before it, so the calls' arrival times at ZEGO, which jitter by a
few milliseconds, still fit the window.

Both rules are checked against the moment a caller actually goes, recorded under the lock, not
against the moment it was promised: a thread that wakes late from its sleep (the GIL, a busy
core) would otherwise go out together with the next one and squeeze 21 calls into a second.
Callers are served first come, first served, so the calls of the first decisions in a batch go
first and, when time runs short, whole decisions are finished rather than every one started.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
WINDOW_MARGIN_SECONDS = 0.025  # head-room for network jitter between our clock and ZEGO's


class CallPacer:
    def __init__(
        self,
        calls_per_second: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls_per_second < 1:
            raise ValueError("calls_per_second must be at least 1")
        self._interval = 1.0 / calls_per_second
        self._starts: deque[float] = deque(maxlen=calls_per_second)  # the last N actual starts
        self._next_start = 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # First come, first served: one caller waits for its start, the others queue behind it,
        # each woken on its own (one Event each), so a turn wakes one thread, not all of them.
        self._busy = False
        self._queue: deque[threading.Event] = deque()

    def acquire(self, latest_start: float) -> bool:
        """Wait for this caller's turn and for a start that keeps the budget; record the start.

        Returns False, recording nothing, once the earliest possible start lies after
        `latest_start` (a time.monotonic() value): the caller should give up rather than wait.
        """
        turn: threading.Event | None = None
        with self._lock:
            if self._busy:
                turn = threading.Event()
                self._queue.append(turn)
            else:
                self._busy = True
        if turn is not None:
            turn.wait()  # the caller ahead hands its turn over; _busy stays set meanwhile
        try:
            return self._wait_for_start(latest_start)
        finally:
            with self._lock:
                if self._queue:
                    self._queue.popleft().set()
                else:
                    self._busy = False

    def _wait_for_start(self, latest_start: float) -> bool:
        # Only the caller at the head of the line gets here.
        while True:
            with self._lock:
                now = self._clock()
                earliest = self._earliest_start()
                if earliest > latest_start:
                    return False
                if now >= earliest:
                    self._starts.append(now)
                    self._next_start = now + self._interval
                    return True
            self._sleep(earliest - now)  # outside the lock: pause() may move the start meanwhile

    def pause(self, seconds: float) -> None:
        """Start nothing for `seconds` from now (ZEGO answered 30002: someone spends our budget)."""
        with self._lock:
            self._next_start = max(self._next_start, self._clock() + seconds)

    def _earliest_start(self) -> float:
        earliest = self._next_start
        if len(self._starts) == self._starts.maxlen:
            earliest = max(earliest, self._starts[0] + WINDOW_SECONDS + WINDOW_MARGIN_SECONDS)
        return earliest
