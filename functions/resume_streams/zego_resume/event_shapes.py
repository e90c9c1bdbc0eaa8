"""Handler room: turns the three accepted event shapes (docs/contract.md) into deliveries.

Plain dict access rather than Powertools' event data classes: four fields are read, and the data
classes package costs tens of milliseconds of import at cold start.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from zego_resume.domain.delivery import DIRECT, EVENTBRIDGE, SQS, Delivery
from zego_resume.domain.request import InvalidRequest, parse_resume_request


def read_event(event: object, *, invocation_id: str, now_ms: int | None = None) -> list[Delivery]:
    """The event's deliveries; each carries a request or the reason it is invalid. Never raises."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        records = event["Records"]
        if records and all(_is_sqs_record(record) for record in records):
            return [_sqs_delivery(record, now_ms) for record in records]
        return [_invalid(invocation_id, DIRECT, event, "UnrecognisedEvent", "Records are not SQS records")]
    if isinstance(event, dict) and _is_eventbridge(event):
        key = str(event.get("id") or invocation_id)
        return [_request_delivery(key, EVENTBRIDGE, event, event, fallback_ms=_event_time(event, now_ms))]
    if isinstance(event, dict) and "streamIds" not in event:
        return [
            _invalid(
                invocation_id,
                DIRECT,
                event,
                "UnrecognisedEvent",
                "the event is neither an SQS batch, an EventBridge event nor a resume request",
            )
        ]
    key = invocation_id
    if isinstance(event, dict) and isinstance(event.get("requestId"), str) and event["requestId"]:
        key = event["requestId"]
    return [_request_delivery(key, DIRECT, event, event, fallback_ms=now_ms)]


def _is_sqs_record(record: object) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"


def _is_eventbridge(document: dict[str, Any]) -> bool:
    return "detail-type" in document and "source" in document


def _is_async_failure_record(document: dict[str, Any]) -> bool:
    return "requestContext" in document and "requestPayload" in document


def _sqs_delivery(record: dict[str, Any], now_ms: int) -> Delivery:
    key = str(record.get("messageId", ""))
    attributes = record.get("attributes") or {}
    receive_count = _int(attributes.get("ApproximateReceiveCount"), default=1)
    sent_ms = _int(attributes.get("SentTimestamp"), default=now_ms)
    body = record.get("body")
    if not isinstance(body, str) or not body.strip():
        return _invalid(key, SQS, body or "", "EmptyBody", "the message body is empty", receive_count)
    try:
        document = json.loads(body)
    except ValueError:
        return _invalid(key, SQS, body, "MalformedJson", "the message body is not JSON", receive_count)
    if isinstance(document, dict) and _is_async_failure_record(document):
        # A failed async invocation, as Lambda's OnFailure destination wrote it to the DLQ, sent
        # back by an operator's redrive: the original event is its requestPayload.
        document = document["requestPayload"]
    if isinstance(document, dict) and _is_eventbridge(document):
        # EventBridge rule -> queue: the envelope's time is the decision's, SentTimestamp is later.
        return _request_delivery(
            key,
            SQS,
            body,
            document,
            fallback_ms=_event_time(document, sent_ms),
            receive_count=receive_count,
        )
    return _request_delivery(key, SQS, body, document, fallback_ms=sent_ms, receive_count=receive_count)


def _request_delivery(
    key: str,
    source: str,
    raw: object,
    document: Any,
    *,
    fallback_ms: int,
    receive_count: int = 1,
) -> Delivery:
    payload = document
    if isinstance(document, dict) and _is_eventbridge(document):
        if document.get("detail") is None:
            return _invalid(
                key,
                source,
                raw,
                "MissingDetail",
                "the EventBridge event has no detail",
                receive_count,
            )
        payload = document["detail"]
    try:
        request = parse_resume_request(payload, fallback_sequence=fallback_ms)
    except InvalidRequest as invalid:
        return Delivery(
            key=key, source=source, raw=_verbatim(raw), invalid=invalid, receive_count=receive_count
        )
    return Delivery(key=key, source=source, raw=_verbatim(raw), request=request, receive_count=receive_count)


def _invalid(
    key: str, source: str, raw: object, reason: str, message: str, receive_count: int = 1
) -> Delivery:
    return Delivery(
        key=key,
        source=source,
        raw=_verbatim(raw),
        invalid=InvalidRequest(reason, message),
        receive_count=receive_count,
    )


def _verbatim(raw: object) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), default=str)


def _event_time(document: dict[str, Any], default_ms: int) -> int:
    """EventBridge's `time` (ISO 8601, whole seconds) in milliseconds."""
    value = document.get("time")
    if not isinstance(value, str):
        return default_ms
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return default_ms
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _int(value: object, *, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return default
