"""Domain: one planned call carried to ZEGO — its attempts, what each answer means, and when to
stop. Synchronous: the parallel runner (an adapter) runs several of these loops at once, and a
unit test runs one on a fake clock without a thread.

The loop is written out rather than taken from a retry library because every attempt must be
re-signed with a fresh nonce and timestamp *and* a higher Sequence, the decision depends on ZEGO's
Code in the body, 100000005 takes a secret refresh instead of a back-off, and the stop condition
is the Lambda's remaining time: each of those would be a custom hook in tenacity or urllib3's
Retry, and the loop below says all of it in one place.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from zego_resume.domain.call_plan import ATTEMPTS_PER_RECEIVE, PlannedCall, attempt_sequence
from zego_resume.domain.deadline import Deadline
from zego_resume.domain.outage import Admission, OutageDetector, RetryBudget
from zego_resume.domain.outcome import CodeClass, Failure, classify_code
from zego_resume.ports import (
    CredentialSource,
    NoTurnBeforeDeadline,
    RateBudget,
    SecretError,
    TransportError,
    Turn,
    ZegoCredentials,
    ZegoGateway,
)

OUT_OF_TIME = "Timeout"
INVALID_STREAM_ID_LIST = "30006"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = ATTEMPTS_PER_RECEIVE  # never more: the Sequence scheme relies on it
    base_delay: float = 0.1
    max_delay: float = 2.0
    # ZEGO counts calls over a sliding second, so backing off for less than that after a 30002
    # only spends the budget again.
    rate_limited_pause: float = 1.0
    min_call_time: float = 0.5  # a call is not started with less time than this left

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= ATTEMPTS_PER_RECEIVE:
            raise ValueError(f"max_attempts must be within 1..{ATTEMPTS_PER_RECEIVE}")

    def backoff(self, attempt: int, jitter: float) -> float:
        """The wait after failed attempt `attempt` (0-based), `jitter` drawn from [0, 1).

        Exponential with "equal jitter": never shorter than half the step, so retries of calls
        that failed together spread out without collapsing to zero.
        """
        step = min(self.max_delay, self.base_delay * 2.0**attempt)
        return step / 2 + jitter * step / 2


@dataclass
class CallStats:
    """What the calls did, summed in the invocation's own thread (metrics are not thread-safe)."""

    calls: int = 0  # HTTP requests sent to ZEGO, retries included
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by ZEGO Code or failure name
    secret_refreshes: int = 0
    probes: int = 0  # calls made as the outage's probe
    outage_refused: int = 0  # calls not made because ZEGO is in outage
    retries_refused: int = 0  # retries the retry budget did not allow
    splits: int = 0  # calls answered 30006 and split in halves

    def add(self, other: CallStats) -> None:
        self.calls += other.calls
        self.retries += other.retries
        self.errors.update(other.errors)
        self.secret_refreshes += other.secret_refreshes
        self.probes += other.probes
        self.outage_refused += other.outage_refused
        self.retries_refused += other.retries_refused
        self.splits += other.splits


# Where each stream id of a call ended: None for resumed, else why it was not.
CallParts = tuple[tuple[Failure | None, tuple[str, ...]], ...]


@dataclass(frozen=True)
class CallResult:
    parts: CallParts
    stats: CallStats


class AttemptLoop:
    """Carries one planned call through its attempts, within the deadline and the rate budget."""

    def __init__(
        self,
        gateway: ZegoGateway,
        credentials: CredentialSource,
        budget: RateBudget,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        outage: OutageDetector | None = None,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        self._gateway = gateway
        self._credentials = credentials
        self._budget = budget
        self._policy = policy or RetryPolicy()
        self._outage = outage or OutageDetector(probe_seconds=10.0)
        self._retry_budget = retry_budget or RetryBudget()
        self._sleep = sleep
        self._jitter = jitter

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    def run(self, call: PlannedCall, deadline: Deadline) -> CallResult:
        """Every attempt of `call` until one succeeds, one fails for good, or time is up.
        Never raises for a failed call: the failure is in the result."""
        stats = CallStats()
        parts = self._run_part(call, 0, deadline, stats)
        return CallResult(parts=tuple(parts), stats=stats)

    def _run_part(
        self, call: PlannedCall, first_attempt: int, deadline: Deadline, stats: CallStats
    ) -> list[tuple[Failure | None, tuple[str, ...]]]:
        """One call's attempts; a call of several ids answered 30006 is split in halves, each
        carried on with the next attempt numbers, so that only the ids ZEGO refuses fail."""
        failure, next_attempt = self._attempts(call, first_attempt, deadline, stats)
        ids = call.stream_ids
        if (
            failure is not None
            and failure.code == INVALID_STREAM_ID_LIST
            and len(ids) > 1
            and next_attempt < self._policy.max_attempts
        ):
            stats.splits += 1
            half = len(ids) // 2
            return [
                part
                for ids_of_half in (ids[:half], ids[half:])
                for part in self._run_part(
                    PlannedCall(ids_of_half, call.base_sequence), next_attempt, deadline, stats
                )
            ]
        return [(failure, ids)]

    def _attempts(
        self, call: PlannedCall, first_attempt: int, deadline: Deadline, stats: CallStats
    ) -> tuple[Failure | None, int]:
        """The failure that ends the call (None: it succeeded), and the next attempt number."""
        policy = self._policy
        failure: Failure | None = None
        code_class: CodeClass | None = None
        refreshed = False
        delay = 0.0
        attempt = first_attempt
        while attempt < policy.max_attempts:
            if code_class is CodeClass.TRANSIENT and not self._retry_budget.take_retry():
                stats.retries_refused += 1  # a brownout must not be multiplied by the retries
                break
            if delay:
                if deadline.time_left() - delay < policy.min_call_time:
                    break
                self._sleep(delay)
            admission = self._outage.admit()
            if admission is Admission.REFUSED:
                stats.outage_refused += 1
                return failure or _in_outage(self._outage.last_failure), attempt
            try:
                credentials = self._credentials.current()
            except SecretError as error:
                return Failure(error.code, error.message, transient=True, attempts=attempt), attempt
            turn = _UnlessOutage(
                self._budget.turn(deadline.at - self._policy.min_call_time),
                self._outage if admission is Admission.CALL else None,
            )
            try:
                outcome = self._attempt(call, attempt, credentials, deadline, turn)
            except NoTurnBeforeDeadline:  # nothing was sent: the last real failure says why
                if turn.refused_by_outage:
                    stats.outage_refused += 1
                    return failure or _in_outage(self._outage.last_failure), attempt
                break
            stats.calls += 1
            stats.retries += attempt > first_attempt
            stats.probes += admission is Admission.PROBE
            attempt += 1
            if outcome is None:
                self._outage.succeeded()
                self._retry_budget.succeeded()
                return None, attempt
            failure, code_class = outcome
            self._outage.failed(failure, call.stream_ids)
            stats.errors[failure.code] += 1
            if code_class is CodeClass.PERMANENT:
                return failure, attempt
            if code_class is CodeClass.SIGNATURE_MISMATCH:
                if refreshed:  # the fresh secret is refused too: no rotation to wait for
                    persists = "signature mismatch persists after refreshing the secret"
                    return _permanent(failure, persists), attempt
                try:
                    self._credentials.refresh(credentials)
                except SecretError as error:
                    return Failure(error.code, error.message, transient=True, attempts=attempt), attempt
                refreshed = True
                stats.secret_refreshes += 1
                delay = 0.0
                continue
            if code_class is CodeClass.RATE_LIMITED:
                self._budget.pause(policy.rate_limited_pause)
            delay = policy.backoff(attempt - 1, self._jitter())
        return failure or out_of_time(), attempt

    def _attempt(
        self, call: PlannedCall, attempt: int, credentials: ZegoCredentials, deadline: Deadline, turn: Turn
    ) -> tuple[Failure, CodeClass] | None:
        """None on success; else the failure and its class.

        Raises NoTurnBeforeDeadline: the attempt was not made."""
        try:
            answer = self._gateway.resume(
                credentials,
                call.stream_ids,
                attempt_sequence(call.base_sequence, attempt),
                deadline=deadline.at,
                turn=turn,
            )
        except NoTurnBeforeDeadline:
            raise
        except TransportError as error:
            return Failure(
                error.code, error.message, transient=True, attempts=attempt + 1
            ), CodeClass.TRANSIENT
        code_class = classify_code(answer.code)
        if code_class is CodeClass.SUCCESS:
            return None
        failure = Failure(
            str(answer.code),
            answer.message,
            transient=code_class is not CodeClass.PERMANENT,
            zego_request_id=answer.request_id,
            attempts=attempt + 1,
        )
        return failure, code_class


class _UnlessOutage:
    """A call's turn that is not taken when ZEGO went into outage while the call waited for it
    (the calls queued behind a failing ZEGO are handed back, not sent)."""

    def __init__(self, turn: Turn, outage: OutageDetector | None) -> None:
        self._turn = turn
        self._outage = outage
        self.refused_by_outage = False

    def __call__(self) -> bool:
        if not self._turn():
            return False
        if self._outage is not None and self._outage.is_open:
            self.refused_by_outage = True  # the slot is lost, never handed on
            return False
        return True

    def written(self, at: float | None) -> None:
        self._turn.written(at)


def out_of_time() -> Failure:
    return Failure(
        OUT_OF_TIME, "the invocation ran out of time before this call could be made", transient=True
    )


def _in_outage(last: Failure | None) -> Failure:
    """A call not made because ZEGO keeps failing: transient, with the failure that shows it."""
    code = last.code if last is not None else "ZegoOutage"
    cause = f" (last: {last.message})" if last is not None else ""
    return Failure(code, f"ZEGO keeps failing; handed back without a call{cause}", transient=True)


def _permanent(failure: Failure, message: str) -> Failure:
    return Failure(
        failure.code,
        message,
        transient=False,
        zego_request_id=failure.zego_request_id,
        attempts=failure.attempts,
    )
