"""Domain: one decision as it arrived, whatever the trigger — its request, or why it is none."""

from __future__ import annotations

from dataclasses import dataclass

from zego_resume.domain.request import InvalidRequest, ResumeRequest

SQS, EVENTBRIDGE, DIRECT = "sqs", "eventbridge", "direct"


@dataclass(frozen=True)
class Delivery:
    """One decision as it arrived: a request, or the reason it is not one (never both)."""

    key: str  # correlation id: SQS messageId, EventBridge id, or requestId
    source: str  # SQS | EVENTBRIDGE | DIRECT
    raw: str  # what arrived, verbatim: dead-lettered as is when it is no valid request
    request: ResumeRequest | None = None
    invalid: InvalidRequest | None = None
    receive_count: int = 1  # SQS ApproximateReceiveCount
    # SQS only: when the message was sent (its age decides when to give up), and what it takes to
    # delay its next delivery.
    sent_ms: int | None = None
    receipt_handle: str | None = None
    source_arn: str | None = None
