"""Domain: carry a batch of decisions to ZEGO — plan the calls, have the runner carry them, and
map every call's result back to the decisions whose stream ids it carried.

The attempts of one call live in retry.py; running several at once is the runner's (an adapter,
behind the CallRunner port); this module only maps decisions to calls and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

from zego_resume.domain.call_plan import Decision, PlannedCall, base_sequence, plan_calls
from zego_resume.domain.deadline import Deadline
from zego_resume.domain.outcome import DecisionOutcome, FailedParts, Failure
from zego_resume.domain.request import InvalidRequest, ResumeRequest, require_test_prefix
from zego_resume.domain.retry import AttemptLoop, CallResult, CallStats, out_of_time
from zego_resume.ports import CallRunner, CredentialSource, RateBudget, SecretError

RESULT_GRACE_SECONDS = 0.25


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
        attempts: AttemptLoop,
        credentials: CredentialSource,
        budget: RateBudget,
        runner: CallRunner,
        *,
        is_test: bool = False,
    ) -> None:
        self._attempts = attempts
        self._credentials = credentials
        self._budget = budget
        self._runner = runner
        self._is_test = is_test

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
        results = self._run(plan.calls, deadline)
        where: dict[str, Failure | None] = {}
        for result in results:
            report.stats.add(result.stats)
            for part_failure, stream_ids in result.parts:
                for stream_id in stream_ids:
                    where[stream_id] = part_failure
        for decision in decisions:
            resumed = tuple(stream_id for stream_id in decision.stream_ids if where[stream_id] is None)
            report.outcomes[decision.key] = DecisionOutcome(
                resumed=resumed, failed=_failed_parts(decision.stream_ids, where)
            )
        return report

    def _run(self, calls: Sequence[PlannedCall], deadline: Deadline) -> list[CallResult]:
        self._budget.expect(len(calls))
        tasks = [partial(self._attempts.run, call, deadline) for call in calls]
        # A call in flight ends by deadline.at (its gateway's own bound); the grace only collects it.
        results = self._runner.run(tasks, wait_until=deadline.at + RESULT_GRACE_SECONDS)
        return [
            result if result is not None else CallResult(((out_of_time(), call.stream_ids),), CallStats())
            for call, result in zip(calls, results, strict=True)
        ]


def _failed_parts(stream_ids: tuple[str, ...], where: dict[str, Failure | None]) -> FailedParts:
    """The decision's failed ids, grouped by the failure that holds them, in first-seen order."""
    groups: dict[int, tuple[Failure, list[str]]] = {}
    for stream_id in stream_ids:
        failure = where[stream_id]
        if failure is not None:
            groups.setdefault(id(failure), (failure, []))[1].append(stream_id)
    return tuple((failure, tuple(ids)) for failure, ids in groups.values())
