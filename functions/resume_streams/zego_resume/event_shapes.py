"""Handler room: turns the three accepted event shapes (docs/contract.md) into deliveries.

Reading is total: whatever one record holds — a body that is not JSON, nested ten thousand deep,
a number of five thousand digits, a key given twice, a timestamp of year 1 — it becomes that
record's `InvalidRequest` with a reason, and never an exception that would fail the records
batched with it. Plain dict access rather than Powertools' event data classes: a few fields are
read, and the data classes package costs tens of milliseconds of import at cold start.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from zego_resume.domain.delivery import DIRECT, EVENTBRIDGE, SQS, Delivery
from zego_resume.domain.request import (
    MAX_REQUEST_ID_LENGTH,
    InvalidRequest,
    OversizedNumber,
    parse_resume_request,
)

# Numbers longer than this are kept as text: int() of thousands of digits is slow, and Python
# refuses more than 4,300 with a ValueError.
MAX_NUMBER_DIGITS = 30


class _Transport(TypedDict, total=False):
    """What an SQS record says about its message, beyond its body."""

    receive_count: int
    sent_ms: int | None
    receipt_handle: str | None
    source_arn: str | None


def read_event(event: object, *, invocation_id: str, now_ms: int | None = None) -> list[Delivery]:
    """The event's deliveries; each carries a request or the reason it is invalid. Never raises."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        records = event["Records"]
        if records and all(_is_sqs_record(record) for record in records):
            return [_total(_sqs_delivery, record, now_ms) for record in records]
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
    return [_request_delivery(_direct_key(event, invocation_id), DIRECT, event, event, fallback_ms=now_ms)]


def decode_json(text: str) -> Any:
    """JSON as producers send it, read strictly: a key given twice is an error (which value was
    meant cannot be known), and very long numbers stay text (OversizedNumber).

    Raises InvalidRequest (MalformedJson, DuplicateKey): never retry it.
    """
    failure: InvalidRequest | None = None
    try:
        return json.loads(text, object_pairs_hook=_object_without_duplicates, parse_int=_bounded_int)
    except _DuplicateKey as duplicate:
        failure = InvalidRequest("DuplicateKey", f"the key {duplicate.key!r} appears twice in one object")
    except RecursionError:
        failure = InvalidRequest("MalformedJson", "the message body nests too deeply to be a request")
    except ValueError:
        failure = InvalidRequest("MalformedJson", "the message body is not JSON")
    # Raised outside `except`: the decoder's error carries the whole body as its `doc`.
    assert failure is not None
    raise failure


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key[:48]


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


def _bounded_int(text: str) -> int | OversizedNumber:
    return int(text) if len(text.lstrip("-")) <= MAX_NUMBER_DIGITS else OversizedNumber(text)


def _total(read: Any, record: dict[str, Any], now_ms: int) -> Delivery:
    """`read(record)`, or — whatever it raised — the record dead-lettered with the reason."""
    try:
        delivery: Delivery = read(record, now_ms)
        return delivery
    except Exception as error:  # a bug or a shape nobody foresaw: this record only
        key = str(record.get("messageId", ""))
        return _invalid(
            key,
            SQS,
            record.get("body") or "",
            "UnreadableRecord",
            f"the record could not be read ({type(error).__name__})",
        )


def _is_sqs_record(record: object) -> bool:
    return isinstance(record, dict) and record.get("eventSource") == "aws:sqs"


def _is_eventbridge(document: dict[str, Any]) -> bool:
    return "detail-type" in document and "source" in document


def _is_async_failure_record(document: dict[str, Any]) -> bool:
    return "requestContext" in document and "requestPayload" in document


def _direct_key(event: object, invocation_id: str) -> str:
    """A direct request's correlation id: its requestId when that is a usable one."""
    if isinstance(event, dict):
        request_id = event.get("requestId")
        if isinstance(request_id, str) and 0 < len(request_id) <= MAX_REQUEST_ID_LENGTH:
            return request_id
    return invocation_id


def _sqs_delivery(record: dict[str, Any], now_ms: int) -> Delivery:
    key = str(record.get("messageId", ""))
    attributes = record.get("attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    receive_count = max(1, _int(attributes.get("ApproximateReceiveCount"), default=1))
    sent_ms = _int(attributes.get("SentTimestamp"), default=now_ms)
    transport = _Transport(
        receive_count=receive_count,
        sent_ms=sent_ms,
        receipt_handle=_text(record.get("receiptHandle")),
        source_arn=_text(record.get("eventSourceARN")),
    )
    body = record.get("body")
    if not isinstance(body, str) or not body.strip():
        return _invalid(key, SQS, body or "", "EmptyBody", "the message body is empty", **transport)
    try:
        document = decode_json(body)
    except InvalidRequest as invalid:
        return Delivery(key=key, source=SQS, raw=body, invalid=invalid, **transport)
    if isinstance(document, dict) and _is_async_failure_record(document):
        # A failed async invocation, as Lambda's OnFailure destination wrote it to the DLQ, sent
        # back by an operator's redrive: the original event is its requestPayload.
        document = document["requestPayload"]
    fallback_ms = sent_ms
    if isinstance(document, dict) and _is_eventbridge(document):
        # EventBridge rule -> queue: the envelope's time is the decision's, SentTimestamp is later.
        fallback_ms = _event_time(document, sent_ms)
    return _request_delivery(key, SQS, body, document, fallback_ms=fallback_ms, **transport)


def _request_delivery(
    key: str, source: str, raw: object, document: Any, *, fallback_ms: int, **transport: Unpack[_Transport]
) -> Delivery:
    payload = document
    if isinstance(document, dict) and _is_eventbridge(document):
        if document.get("detail") is None:
            return _invalid(
                key, source, raw, "MissingDetail", "the EventBridge event has no detail", **transport
            )
        payload = document["detail"]
    try:
        request = parse_resume_request(payload, fallback_sequence=fallback_ms)
    except InvalidRequest as invalid:
        return Delivery(key=key, source=source, raw=_verbatim(raw), invalid=invalid, **transport)
    return Delivery(key=key, source=source, raw=_verbatim(raw), request=request, **transport)


def _invalid(
    key: str, source: str, raw: object, reason: str, message: str, **transport: Unpack[_Transport]
) -> Delivery:
    return Delivery(
        key=key, source=source, raw=_verbatim(raw), invalid=InvalidRequest(reason, message), **transport
    )


def _verbatim(raw: object) -> str:
    return raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"), default=str)


def _event_time(document: dict[str, Any], default_ms: int) -> int:
    """EventBridge's `time` (ISO 8601, whole seconds) in milliseconds. Not range-checked here:
    the request's validation checks a fallback Sequence like a given one."""
    value = document.get("time")
    if not isinstance(value, str):
        return default_ms
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return default_ms


def _int(value: object, *, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_NUMBER_DIGITS:
        return int(value)
    return default


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
