"""Adapter: spaces ZEGO calls so no sliding one-second window ever holds more than the budget.

Written here rather than taken from a rate-limit library: those hand out a bucket's worth of
permits at once and refill it, which is right for a fixed window and wrong for ZEGO's sliding
one — a full bucket spent at the end of one second and another at the start of the next puts
twice the budget inside one sliding second. This pacer does two small things instead: it spaces
starts evenly (1/N s apart), and it never starts the (N+1)-th call until a second and a margin
have passed since the N-th call before it, so the calls' arrival times at ZEGO, which jitter by a
few milliseconds, still fit the window.
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
        self._recent: deque[float] = deque(maxlen=calls_per_second)  # the last N start times
        self._next_start = 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self, latest_start: float) -> bool:
        """Wait for the next free start slot and take it.

        Returns False at once, taking nothing, if that slot lies after `latest_start`
        (a time.monotonic() value): the caller should give up rather than wait.
        """
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            if len(self._recent) == self._recent.maxlen:
                start = max(start, self._recent[0] + WINDOW_SECONDS + WINDOW_MARGIN_SECONDS)
            if start > latest_start:
                return False
            self._recent.append(start)
            self._next_start = start + self._interval
        if start > now:  # sleep outside the lock: later callers queue behind this slot, not it
            self._sleep(start - now)
        return True

    def pause(self, seconds: float) -> None:
        """Start nothing for `seconds` from now (ZEGO answered 30002: someone else spends our budget)."""
        with self._lock:
            self._next_start = max(self._next_start, self._clock() + seconds)
