"""Handler room: one invocation from event to answer.

Reads the event's deliveries, has the domain resume them, sends the dead letters, and answers in
the trigger's terms: `batchItemFailures` for SQS; a summary, or an exception that hands the event
to Lambda's async retries and OnFailure destination, for EventBridge and direct calls.

Not Powertools' BatchProcessor: it hands records to a handler one at a time, and packing the ids
of every record into shared calls of 20 needs the whole batch before the first call; the
partial-batch answer it would build is one list comprehension.
"""

from __future__ import annotations

from typing import Any

from zego_resume.domain.deadline import Deadline
from zego_resume.domain.delivery import SQS
from zego_resume.domain.disposition import Disposition, dispose
from zego_resume.domain.resumer import PendingDecision
from zego_resume.event_shapes import read_event
from zego_resume.local_context import remaining_seconds
from zego_resume.observability import record_invocation
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
    max_receive_count = rt.settings.max_receive_count
    dispositions = [
        dispose(
            delivery,
            outcome=report.outcomes.get(str(index)),
            rejected=report.rejected.get(str(index)),
            final_attempt=delivery.source == SQS
            and max_receive_count is not None
            and delivery.receive_count >= max_receive_count,
        )
        for index, delivery in enumerate(deliveries)
    ]

    letters = [letter for disposition in dispositions for letter in disposition.letters]
    accepted = iter(rt.dead_letters.send(letters, deadline=deadline.hard_at) if letters else [])
    for disposition in dispositions:
        disposition.unsent = sum(not next(accepted) for _ in disposition.letters)

    record_invocation(dispositions, report.stats, rt.budget.take_report() if rt.budget else None)
    if deliveries[0].source == SQS:
        return {
            "batchItemFailures": [
                {"itemIdentifier": disposition.delivery.key}
                for disposition in dispositions
                if disposition.handed_back
            ]
        }
    return _answer_async(dispositions[0])


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
