"""Domain: carry a batch of decisions to ZEGO — plan the calls, run them in parallel within the
rate budget, retry what is transient, and map every call's result back to its decisions.

The I/O is behind the ports (ZegoGateway, CredentialSource, Pacer); this module only decides.
The retry loop is written out rather than taken from a retry library because every attempt must
be re-signed with a fresh nonce and timestamp *and* a higher Sequence, the decision depends on
ZEGO's Code in the body, 100000005 takes a secret refresh instead of a back-off, and the stop
condition is the Lambda's remaining time: each of those would be a custom hook in tenacity or
urllib3's Retry, and the loop below says all of it in one place.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .call_plan import (
    ATTEMPTS_PER_RECEIVE,
    Decision,
    PlannedCall,
    attempt_sequence,
    base_sequence,
    plan_calls,
)
from .outcome import CodeClass, DecisionOutcome, Failure, classify_code
from .ports import (
    CredentialSource,
    Pacer,
    SecretError,
    TransportError,
    ZegoCredentials,
    ZegoGateway,
)
from .request import InvalidRequest, ResumeRequest, require_test_prefix

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

OUT_OF_TIME = "Timeout"


class Deadline:
    """The moment work must stop: the Lambda's remaining time less a safety margin, kept for
    dead-lettering and answering the trigger."""

    def __init__(
        self,
        remaining_seconds: float,
        *,
        safety_margin: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.at = clock() + remaining_seconds - safety_margin

    def time_left(self) -> float:
        return self.at - self._clock()


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


@dataclass
class CallStats:
    """What the calls did, summed in the invocation's own thread (metrics are not thread-safe)."""

    calls: int = 0  # HTTP requests sent to ZEGO, retries included
    retries: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by ZEGO Code or failure name
    secret_refreshes: int = 0

    def add(self, other: CallStats) -> None:
        self.calls += other.calls
        self.retries += other.retries
        self.errors.update(other.errors)
        self.secret_refreshes += other.secret_refreshes


@dataclass(frozen=True)
class PendingDecision:
    key: str
    request: ResumeRequest
    receive_count: int = 1


@dataclass
class ResumeReport:
    outcomes: dict[str, DecisionOutcome] = field(default_factory=dict)
    rejected: dict[str, InvalidRequest] = field(default_factory=dict)
    stats: CallStats = field(default_factory=CallStats)


class Resumer:
    def __init__(
        self,
        gateway: ZegoGateway,
        credentials: CredentialSource,
        pacer: Pacer,
        *,
        is_test: bool = False,
        max_workers: int = 20,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._gateway = gateway
        self._credentials = credentials
        self._pacer = pacer
        self._is_test = is_test
        self._max_workers = max_workers
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._jitter = jitter
        self._executor: ThreadPoolExecutor | None = None  # built on the first batch needing it

    def resume(self, pending: Sequence[PendingDecision], deadline: Deadline) -> ResumeReport:
        """Resume every decision's streams. Never raises for a failed call: each failure is
        reported against the decisions it concerns."""
        report = ResumeReport()
        try:
            credentials = self._credentials.current()
        except SecretError as error:
            failure = Failure(error.code, error.message, transient=True)
            for item in pending:
                report.outcomes[item.key] = DecisionOutcome(failed=((failure, item.request.stream_ids),))
            return report

        decisions = []
        for item in pending:
            try:
                if self._is_test:
                    require_test_prefix(item.request, credentials.app_id)
            except InvalidRequest as invalid:
                report.rejected[item.key] = invalid
                continue
            decisions.append(
                Decision(
                    key=item.key,
                    stream_ids=item.request.stream_ids,
                    base_sequence=base_sequence(item.request.sequence, item.receive_count),
                )
            )

        plan = plan_calls(decisions)
        results = self._run_all(plan.calls, deadline, report.stats)
        for decision in decisions:
            resumed: list[str] = []
            failed: list[tuple[Failure, tuple[str, ...]]] = []
            for index, stream_ids in plan.calls_for(decision).items():
                result = results[index]
                if result is None:
                    resumed.extend(stream_ids)
                else:
                    failed.append((result, stream_ids))
            report.outcomes[decision.key] = DecisionOutcome(resumed=tuple(resumed), failed=tuple(failed))
        return report

    def _run_all(
        self, calls: Sequence[PlannedCall], deadline: Deadline, stats: CallStats
    ) -> list[Failure | None]:
        if len(calls) <= 1:  # no thread for the common one-call event: cheaper cold start
            runs = [self._run_call(call, deadline) for call in calls]
        else:
            runs = self._run_in_parallel(calls, deadline)
        for _, call_stats in runs:
            stats.add(call_stats)
        return [failure for failure, _ in runs]

    def _run_in_parallel(
        self, calls: Sequence[PlannedCall], deadline: Deadline
    ) -> list[tuple[Failure | None, CallStats]]:
        # Imported here: a one-call event (the common cold start) never needs threads.
        from concurrent.futures import Future, ThreadPoolExecutor, wait

        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="zego")
        # This thread takes each call's first turn from the pacer and only then hands the call
        # to a worker: a worker wakes once per call instead of every worker queueing in the
        # pacer, which cost more CPU than the HTTP call itself. It takes a turn only once a
        # worker is free, so the call goes out at its turn: a call queued behind busy workers
        # would go out late, next to later turns, and squeeze ZEGO's sliding second.
        # Retries take their turns inside the worker.
        latest_start = deadline.at - self._policy.min_call_time
        free_workers = threading.Semaphore(self._max_workers)
        futures: list[Future[tuple[Failure | None, CallStats]] | None] = []
        for call in calls:
            wait_for_worker = max(0.0, deadline.time_left() - self._policy.min_call_time)
            has_worker = free_workers.acquire(timeout=wait_for_worker)
            if has_worker and self._pacer.acquire(latest_start):
                futures.append(self._executor.submit(self._run_freeing, free_workers, call, deadline))
            else:
                if has_worker:
                    free_workers.release()
                futures.append(None)  # out of time: the call is never started
        wait([future for future in futures if future is not None])
        return [
            future.result() if future is not None else (_out_of_time(), CallStats()) for future in futures
        ]

    def _run_freeing(
        self, free_workers: threading.Semaphore, call: PlannedCall, deadline: Deadline
    ) -> tuple[Failure | None, CallStats]:
        try:
            return self._run_call(call, deadline, first_turn_taken=True)
        finally:
            free_workers.release()

    def _run_call(
        self, call: PlannedCall, deadline: Deadline, first_turn_taken: bool = False
    ) -> tuple[Failure | None, CallStats]:
        """One planned call, retried while it is transient and time allows. None on success.

        `first_turn_taken`: the caller already took the first attempt's turn from the pacer."""
        policy = self._policy
        stats = CallStats()
        failure: Failure | None = None
        refreshed = False
        delay = 0.0
        for attempt in range(policy.max_attempts):
            if delay:
                if deadline.time_left() - delay < policy.min_call_time:
                    break
                self._sleep(delay)
            turn_taken = first_turn_taken and attempt == 0
            if not turn_taken and not self._pacer.acquire(deadline.at - policy.min_call_time):
                break
            try:
                credentials = self._credentials.current()
            except SecretError as error:
                return Failure(error.code, error.message, transient=True, attempts=attempt), stats
            if attempt:
                stats.retries += 1
            stats.calls += 1
            outcome = self._attempt(call, attempt, credentials, deadline)
            if outcome is None:
                return None, stats
            failure, code_class = outcome
            stats.errors[failure.code] += 1
            if code_class is CodeClass.PERMANENT:
                return failure, stats
            if code_class is CodeClass.SIGNATURE_MISMATCH:
                if refreshed:  # the fresh secret is refused too: no rotation to wait for
                    return _permanent(
                        failure, "signature mismatch persists after refreshing the secret"
                    ), stats
                try:
                    self._credentials.refresh(credentials)
                except SecretError as error:
                    return Failure(error.code, error.message, transient=True, attempts=attempt + 1), stats
                refreshed = True
                stats.secret_refreshes += 1
                delay = 0.0
                continue
            if code_class is CodeClass.RATE_LIMITED:
                self._pacer.pause(policy.rate_limited_pause)
            delay = self._backoff(attempt)
        return failure or _out_of_time(), stats

    def _attempt(
        self, call: PlannedCall, attempt: int, credentials: ZegoCredentials, deadline: Deadline
    ) -> tuple[Failure, CodeClass] | None:
        try:
            answer = self._gateway.resume(
                credentials,
                call.stream_ids,
                attempt_sequence(call.base_sequence, attempt),
                time_left=deadline.time_left(),
            )
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

    def _backoff(self, attempt: int) -> float:
        # Exponential with "equal jitter": never shorter than half the step, so retries of calls
        # that failed together spread out without collapsing to zero.
        step = min(self._policy.max_delay, self._policy.base_delay * 2.0**attempt)
        return step / 2 + self._jitter() * step / 2


def _out_of_time() -> Failure:
    return Failure(
        OUT_OF_TIME, "the invocation ran out of time before this call could be made", transient=True
    )


def _permanent(failure: Failure, message: str) -> Failure:
    return Failure(
        failure.code,
        message,
        transient=False,
        zego_request_id=failure.zego_request_id,
        attempts=failure.attempts,
    )
