"""Handler room: one invocation from event to answer.

Reads the event's deliveries, has the domain resume them, sends the dead letters, and answers in
the trigger's terms: `batchItemFailures` for SQS; a summary, or an exception that hands the event
to Lambda's async retries and OnFailure destination, for EventBridge and direct calls.

Not Powertools' BatchProcessor: it hands records to a handler one at a time, and packing the ids
of every record into shared calls of 20 needs the whole batch before the first call; the
partial-batch answer it would build is one list comprehension.
"""

from __future__ import annotations

import time
from typing import Any

from zego_resume.domain.deadline import Deadline
from zego_resume.domain.delivery import SQS, Delivery
from zego_resume.domain.disposition import Disposition, dispose
from zego_resume.domain.outage import redelivery_delay
from zego_resume.domain.resumer import PendingDecision
from zego_resume.event_shapes import read_event
from zego_resume.local_context import remaining_seconds
from zego_resume.observability import record_invocation, record_redelivery_failures
from zego_resume.ports import Redelivery
from zego_resume.runtime import Runtime, runtime


class ResumeIncomplete(Exception):
    """Some stream ids of an EventBridge or direct event are not resumed yet. Raised so that
    Lambda retries the event and, at the end, hands it to the OnFailure destination."""


def handle_event(event: object, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """One invocation: the answer the trigger expects.

    Returns `{"batchItemFailures": [...]}` for an SQS batch, a summary (`status`,
    `correlationId`, `resumedStreamIds`, `deadLettered`) for an EventBridge or direct event.
    Raises ResumeIncomplete when an EventBridge or direct event is not fully settled (Lambda
    retries it), ConfigurationError when the environment is incomplete (the event goes back
    to its source).
    """
    rt = rt or runtime()
    invocation_id = str(getattr(context, "aws_request_id", "") or "local-invocation")
    deliveries = read_event(event, invocation_id=invocation_id)
    deadline = Deadline(remaining_seconds(context))

    pending = [
        PendingDecision(key=str(index), request=delivery.request, receive_count=delivery.receive_count)
        for index, delivery in enumerate(deliveries)
        if delivery.request is not None
    ]
    report = rt.resumer.resume(pending, deadline)
    now_ms = int(time.time() * 1000)
    dispositions = [
        dispose(
            delivery,
            outcome=report.outcomes.get(str(index)),
            rejected=report.rejected.get(str(index)),
            final_attempt=_gives_up(delivery, rt, now_ms),
        )
        for index, delivery in enumerate(deliveries)
    ]

    letters = [letter for disposition in dispositions for letter in disposition.letters]
    accepted = iter(rt.dead_letters.send(letters, deadline=deadline.hard_at) if letters else [])
    for disposition in dispositions:
        disposition.unsent = sum(not next(accepted) for _ in disposition.letters)

    delays = _delay_redeliveries(dispositions, rt, deadline.hard_at)
    record_invocation(
        dispositions,
        report.stats,
        rt.budget.take_report() if rt.budget else None,
        outage_seconds=rt.outage.outage_seconds() if rt.outage else 0.0,
        delays=delays,
    )
    if deliveries[0].source == SQS:
        return {
            "batchItemFailures": [
                {"itemIdentifier": disposition.delivery.key}
                for disposition in dispositions
                if disposition.handed_back
            ]
        }
    return _answer_async(dispositions[0])


def _gives_up(delivery: Delivery, rt: Runtime, now_ms: int) -> bool:
    """Whether no further delivery will come: an SQS message on its queue's last receive (the
    backstop), or one older than DECISION_MAX_AGE_SECONDS (the rule). Its transient failures are
    then dead-lettered with their reason instead of handed back."""
    if delivery.source != SQS:
        return False
    settings = rt.settings
    if settings.max_receive_count is not None and delivery.receive_count >= settings.max_receive_count:
        return True
    sent_ms = delivery.sent_ms
    return sent_ms is not None and now_ms - sent_ms >= settings.decision_max_age_seconds * 1000


def _delay_redeliveries(dispositions: list[Disposition], rt: Runtime, deadline: float) -> list[int]:
    """Delay the next delivery of every SQS message handed back for a transient reason, longer
    with each receive. A delay that fails leaves the queue's own timeout: still handed back."""
    if rt.redelivery is None:
        return []
    cap = rt.settings.redelivery_max_delay_seconds
    redeliveries = [
        Redelivery(
            disposition.delivery.source_arn,
            disposition.delivery.receipt_handle,
            redelivery_delay(disposition.delivery.receive_count, cap),
        )
        for disposition in dispositions
        if disposition.handed_back
        and disposition.delivery.source == SQS
        and disposition.delivery.source_arn
        and disposition.delivery.receipt_handle
    ]
    if not redeliveries:
        return []
    causes = rt.redelivery.delay(redeliveries, deadline=deadline)
    if causes:
        record_redelivery_failures(causes)
    return [item.seconds for item in redeliveries]


def _answer_async(disposition: Disposition) -> dict[str, Any]:
    if disposition.handed_back:
        raise ResumeIncomplete(
            f"request {disposition.delivery.key}: some stream ids are not resumed yet"
            + (" and could not be dead-lettered" if disposition.unsent else "")
            + "; the event is handed back for a retry"
        )
    dead_lettered = [
        {"errorCode": letter.attributes["ErrorCode"], "errorMessage": letter.attributes["ErrorMessage"]}
        for letter in disposition.letters
    ]
    status = (
        "resumed" if not dead_lettered else ("partially-resumed" if disposition.resumed else "dead-lettered")
    )
    return {
        "status": status,
        "correlationId": disposition.delivery.key,
        "resumedStreamIds": disposition.resumed,
        "deadLettered": dead_lettered,
    }
