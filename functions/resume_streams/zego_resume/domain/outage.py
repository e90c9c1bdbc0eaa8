"""Domain: riding out a ZEGO outage — stop calling a ZEGO that keeps failing, probe it gently,
and keep retries from multiplying a brownout. No I/O; the clock is injected.

* `OutageDetector`: after transient failures of the outage kind (transport errors, HTTP errors,
  30003, 42004, 100000015; never 30002, which is ours, nor a permanent code) of `OPEN_AFTER`
  different calls in a row, with no success in between, the environment is in outage. One call
  that keeps failing (ZEGO refusing one batch, say) counts once, however often it is retried.
  Then the environment makes at most one probe call per `probe_seconds`; every other attempt is
  refused at once, so undone decisions are handed back instead of spending the invocation on
  retries. The first success closes it.
* `RetryBudget`: retries draw tokens that successes put back, in the spirit of the AWS SDKs'
  standard retry mode; a first attempt never needs one, so new calls are never starved.

Written here: the state is ours (one detector per execution environment, shared by its worker
threads), and a circuit-breaker library would add a dependency for twenty lines of state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum

from zego_resume.domain.outcome import Failure

OPEN_AFTER = 5  # different calls failing in a row (outage kind) that open an outage
OUTAGE_CODES = frozenset({"30003", "42004", "100000015"})
TRANSPORT_CODES = frozenset({"Timeout", "ConnectionError", "HttpError", "InvalidResponse"})


def is_outage_kind(failure: Failure) -> bool:
    """A failure that says ZEGO (or the way to it) is down, not that our call was wrong or fast."""
    return failure.transient and (failure.code in OUTAGE_CODES or failure.code in TRANSPORT_CODES)


class Admission(Enum):
    CALL = "call"  # no outage: call as usual
    PROBE = "probe"  # in outage, and this attempt is the probe
    REFUSED = "refused"  # in outage: hand the decision back without calling


class OutageDetector:
    def __init__(
        self,
        probe_seconds: float,
        *,
        open_after: int = OPEN_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe_seconds = probe_seconds
        self._open_after = open_after
        self._clock = clock
        self._lock = threading.Lock()
        self._failing_calls: set[object] = set()  # since the last success
        self._opened_at: float | None = None
        self._next_probe_at = 0.0
        self._last_failure: Failure | None = None
        self.probes = 0  # since the environment started

    def admit(self) -> Admission:
        with self._lock:
            if self._opened_at is None:
                return Admission.CALL
            now = self._clock()
            if now < self._next_probe_at:
                return Admission.REFUSED
            self._next_probe_at = now + self._probe_seconds
            self.probes += 1
            return Admission.PROBE

    def succeeded(self) -> None:
        with self._lock:
            self._failing_calls.clear()
            self._opened_at = None

    def failed(self, failure: Failure, call: object | None = None) -> None:
        """An attempt of `call` (any hashable naming it; None: a call of its own) failed; only
        outage-kind failures count towards an outage, each call once."""
        if not is_outage_kind(failure):
            return
        with self._lock:
            self._last_failure = failure
            if self._opened_at is not None:
                return
            self._failing_calls.add(object() if call is None else call)
            if len(self._failing_calls) >= self._open_after:
                now = self._clock()
                self._opened_at = now
                self._next_probe_at = now + self._probe_seconds

    @property
    def last_failure(self) -> Failure | None:
        return self._last_failure

    @property
    def is_open(self) -> bool:
        """Whether the environment is in outage now."""
        with self._lock:
            return self._opened_at is not None

    def outage_seconds(self) -> float:
        """How long the environment has been in outage (0 when it is not)."""
        with self._lock:
            return 0.0 if self._opened_at is None else max(0.0, self._clock() - self._opened_at)


class RetryBudget:
    """Tokens for retries: a retry costs `retry_cost`, a success puts `refund` back, up to
    `capacity`. With the defaults, 20 retries can be made before any success, and a brownout in
    which half the calls fail is retried about once for every five calls that succeed."""

    def __init__(self, capacity: float = 100.0, retry_cost: float = 5.0, refund: float = 1.0) -> None:
        self._capacity = capacity
        self._retry_cost = retry_cost
        self._refund = refund
        self._tokens = capacity
        self._lock = threading.Lock()
        self.refused = 0  # since the environment started

    def take_retry(self) -> bool:
        with self._lock:
            if self._tokens < self._retry_cost:
                self.refused += 1
                return False
            self._tokens -= self._retry_cost
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + self._refund)


FIRST_REDELIVERY_DELAY = 2  # seconds before a decision handed back on its first receive returns


def redelivery_delay(receive_count: int, cap: int) -> int:
    """Seconds until a decision handed back on its `receive_count`-th receive comes back:
    2, 4, 8, ... doubling per receive, never more than `cap`."""
    exponent = min(max(receive_count, 1) - 1, 30)
    return int(min(cap, FIRST_REDELIVERY_DELAY * 2**exponent))
