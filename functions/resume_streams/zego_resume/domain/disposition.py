"""Domain: where each delivery ends after the invocation's calls — resumed, dead-lettered in part
or whole, or handed back to its source for another attempt."""

from __future__ import annotations

from dataclasses import dataclass

from zego_resume.domain.dead_letters import failed_part_letter, invalid_request_letter
from zego_resume.domain.delivery import Delivery
from zego_resume.domain.outcome import DecisionOutcome, Failure, settle
from zego_resume.domain.request import InvalidRequest
from zego_resume.ports import DeadLetter


@dataclass
class Disposition:
    """One delivery's end: the dead letters to send, and whether it goes back for a retry."""

    delivery: Delivery
    letters: list[DeadLetter]
    retry: bool
    resumed: int = 0
    unsent: int = 0  # letters SQS did not accept: the delivery must go back to its source
    cause: Failure | None = None  # why it goes back for a retry: its first transient failure

    @property
    def handed_back(self) -> bool:
        return self.retry or self.unsent > 0


def dispose(
    delivery: Delivery,
    *,
    outcome: DecisionOutcome | None,
    rejected: InvalidRequest | None,
    final_attempt: bool,
) -> Disposition:
    """The disposition of `delivery`: rejected (invalid, here or by the resumer), or settled from
    its outcome, `final_attempt` saying whether another delivery will come."""
    invalid = delivery.invalid or rejected
    if invalid is not None:
        return Disposition(delivery, [invalid_request_letter(delivery, invalid)], retry=False)
    assert outcome is not None  # a valid request that was not rejected has an outcome
    settlement = settle(outcome, final_attempt=final_attempt)
    letters = [
        failed_part_letter(delivery, failure, stream_ids) for failure, stream_ids in settlement.dead_letters
    ]
    cause = next((failure for failure, _ in outcome.failed if failure.transient), None)
    return Disposition(
        delivery,
        letters,
        retry=settlement.retry,
        resumed=len(outcome.resumed),
        cause=cause if settlement.retry else None,
    )
