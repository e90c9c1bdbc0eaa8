"""Domain: what a dead letter says — its body (a replayable request, or what arrived verbatim) and
its attributes (CONTRACT: ErrorCode, ErrorMessage, ...). Never the secret or a signed URL: nothing
here ever sees them."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from zego_resume.domain.delivery import SQS, Delivery
from zego_resume.domain.outcome import Failure
from zego_resume.domain.request import INVALID_REQUEST, InvalidRequest
from zego_resume.ports import DeadLetter

MAX_ERROR_MESSAGE = 1000
MAX_ATTRIBUTE_VALUE = 1024  # no attribute of ours needs more; a message id or request id far less
# What SQS accepts in a message attribute (or body): XML 1.0's characters. Anything else — NUL,
# other control characters, lone surrogates from a JSON "\ud800" — would make the whole
# SendMessageBatch entry fail, and the dead letter with it.
# Compiled on the first dead letter, not at import: the pattern's ranges cost ~6 ms to compile,
# on every cold start, and most invocations never build a dead letter.
_NOT_ACCEPTED_BY_SQS = "[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"


@functools.cache
def _not_accepted_by_sqs() -> re.Pattern[str]:
    return re.compile(_NOT_ACCEPTED_BY_SQS)


def failed_part_letter(delivery: Delivery, failure: Failure, stream_ids: tuple[str, ...]) -> DeadLetter:
    """The letter for the part of a valid request that failed: its body replays exactly those ids."""
    assert delivery.request is not None  # only a valid request has parts
    return _letter(
        delivery,
        body=_json(delivery.request.with_stream_ids(stream_ids)),
        code=failure.code,
        message=failure.message,
        failure=failure,
    )


def invalid_request_letter(delivery: Delivery, invalid: InvalidRequest) -> DeadLetter:
    """The letter for a request that can never succeed: what arrived, verbatim."""
    return _letter(
        delivery, body=delivery.raw, code=INVALID_REQUEST, message=str(invalid), reason=invalid.reason
    )


def _letter(
    delivery: Delivery,
    *,
    body: str,
    code: str,
    message: str,
    reason: str | None = None,
    failure: Failure | None = None,
) -> DeadLetter:
    attributes = {
        "ErrorCode": code,
        "ErrorMessage": message[:MAX_ERROR_MESSAGE] or code,
        "Source": delivery.source,
        "OriginalMessageId": delivery.key,
    }
    if reason:
        attributes["ErrorReason"] = reason
    if failure is not None:
        attributes["Attempts"] = str(failure.attempts)
        if failure.zego_request_id:
            attributes["ZegoRequestId"] = failure.zego_request_id
    if delivery.source == SQS:
        attributes["ReceiveCount"] = str(delivery.receive_count)
    return DeadLetter(body=body, attributes={name: clean(value) for name, value in attributes.items()})


def clean(value: str) -> str:
    """An attribute value SQS accepts: characters it refuses become U+FFFD, and it is cut short."""
    return _not_accepted_by_sqs().sub("\ufffd", value[:MAX_ATTRIBUTE_VALUE])


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
