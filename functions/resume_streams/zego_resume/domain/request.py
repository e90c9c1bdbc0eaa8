"""Domain: what a resume request is, and how one is validated. No I/O.

A request that fails validation is rejected whole (nothing of it is sent to ZEGO) with an
`InvalidRequest` whose `reason` names the rule it broke; it is dead-lettered verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_STREAM_IDS_PER_REQUEST = 1000  # the documented cap (docs/contract.md: at least 1,000)
MAX_STREAM_ID_LENGTH = 256  # ZEGO's SDK limit
# ZEGO's stream id charset. Anything else must never reach a URL: `&`, `=`, `%` or a space would
# change the meaning of the query string, and a non-ASCII id is rejected by ZEGO anyway.
STREAM_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
# Sequences are sent as integers; ZEGO compares them as 64-bit numbers. The head-room below
# 2**63 leaves space for the per-attempt increments (see call_plan.py).
MAX_SEQUENCE = 9_000_000_000_000_000_000
# `reason` and `requestId` ride along into logs and dead-letter attributes: keep them small.
MAX_REASON_BYTES = 1024  # UTF-8
MAX_REQUEST_ID_LENGTH = 256

INVALID_REQUEST = "InvalidRequest"  # the DLQ ErrorCode of every validation failure


class InvalidRequest(Exception):
    """A request that can never succeed as written. Do not retry: dead-letter it verbatim."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class OversizedNumber:
    """A JSON number too long to be any value a request holds (its text, not converted)."""

    text: str


@dataclass(frozen=True)
class ResumeRequest:
    """A validated decision to lift the publishing ban on some streams."""

    stream_ids: tuple[str, ...]
    sequence: int  # the decision's time in milliseconds: orders it against other decisions
    reason: str | None = None
    request_id: str | None = None

    def with_stream_ids(self, stream_ids: tuple[str, ...]) -> dict[str, Any]:
        """The request as JSON, holding only `stream_ids`: replaying it replays exactly them."""
        body: dict[str, Any] = {"streamIds": list(stream_ids), "sequence": self.sequence}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.request_id is not None:
            body["requestId"] = self.request_id
        return body


def parse_resume_request(payload: object, *, fallback_sequence: int) -> ResumeRequest:
    """Validate a decoded request. `fallback_sequence` is used when it carries no `sequence`.

    Raises InvalidRequest (reason + message); never retry it.
    """
    if not isinstance(payload, dict):
        raise InvalidRequest("NotAnObject", f"a resume request is a JSON object, not {_kind(payload)}")
    sequence = payload.get("sequence")
    return ResumeRequest(
        stream_ids=_stream_ids(payload),
        sequence=_fallback_sequence(fallback_sequence) if sequence is None else _sequence(sequence),
        reason=_reason(payload),
        request_id=_request_id(payload),
    )


def require_test_prefix(request: ResumeRequest, app_id: int) -> None:
    """In ZEGO's test environment every stream id carries `zegotest-<AppId>-`.

    Raises InvalidRequest naming the first id without it; never retry it.
    """
    prefix = f"zegotest-{app_id}-"
    for index, stream_id in enumerate(request.stream_ids):
        if not stream_id.startswith(prefix):
            raise InvalidRequest(
                "MissingTestPrefix",
                f"streamIds[{index}] {_show(stream_id)} lacks the test-environment prefix {prefix}",
            )


def _stream_ids(payload: dict[str, Any]) -> tuple[str, ...]:
    if "streamIds" not in payload:
        raise InvalidRequest("MissingStreamIds", "the request has no streamIds")
    raw = payload["streamIds"]
    if not isinstance(raw, list):
        raise InvalidRequest("StreamIdsNotAList", f"streamIds must be a list, not {_kind(raw)}")
    if not raw:
        raise InvalidRequest("EmptyStreamIds", "streamIds must hold at least one stream id")
    if len(raw) > MAX_STREAM_IDS_PER_REQUEST:
        raise InvalidRequest(
            "TooManyStreamIds",
            f"streamIds holds {len(raw)} ids; at most {MAX_STREAM_IDS_PER_REQUEST} per request",
        )
    for index, stream_id in enumerate(raw):
        _check_stream_id(index, stream_id)
    # Duplicates collapse; the first occurrence keeps its place.
    return tuple(dict.fromkeys(raw))


def _check_stream_id(index: int, stream_id: object) -> None:
    where = f"streamIds[{index}]"
    if not isinstance(stream_id, str):
        raise InvalidRequest("StreamIdNotAString", f"{where} must be a string, not {_kind(stream_id)}")
    if not stream_id:
        raise InvalidRequest("EmptyStreamId", f"{where} is an empty string")
    if len(stream_id) > MAX_STREAM_ID_LENGTH:
        raise InvalidRequest(
            "StreamIdTooLong",
            f"{where} is {len(stream_id)} characters long; at most {MAX_STREAM_ID_LENGTH}",
        )
    if not STREAM_ID_PATTERN.fullmatch(stream_id):
        raise InvalidRequest(
            "InvalidStreamIdCharacters",
            f"{where} {_show(stream_id)} may hold only letters, digits, '-' and '_'",
        )


def _sequence(value: object) -> int:
    if isinstance(value, OversizedNumber):
        raise InvalidRequest("SequenceOutOfRange", f"sequence must not exceed {MAX_SEQUENCE}")
    # bool is an int in Python, and `true` is never a decision time.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidRequest(
            "InvalidSequenceType",
            f"sequence must be an integer or a string of digits, not {_kind(value)}",
        )
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise InvalidRequest("SequenceNotDigits", f"sequence {_show(value)} is not a string of digits")
        if len(value.lstrip("0")) > len(str(MAX_SEQUENCE)):  # before int(): 5,000 digits would raise
            raise InvalidRequest("SequenceOutOfRange", f"sequence must not exceed {MAX_SEQUENCE}")
        value = int(value)
    if value < 0:
        raise InvalidRequest("NegativeSequence", "sequence must not be negative")
    if value > MAX_SEQUENCE:
        raise InvalidRequest("SequenceOutOfRange", f"sequence must not exceed {MAX_SEQUENCE}")
    return value


def _fallback_sequence(value: int) -> int:
    """The event's own time as the Sequence, checked like a given one (an EventBridge `time` of
    year 1 would otherwise reach ZEGO as a negative number)."""
    if not 0 <= value <= MAX_SEQUENCE:
        raise InvalidRequest(
            "SequenceOutOfRange", f"the event's time gives a Sequence of {value}, outside 0..{MAX_SEQUENCE}"
        )
    return value


def _reason(payload: dict[str, Any]) -> str | None:
    reason = _optional_text(payload, "reason", "InvalidReason")
    if reason is not None and len(reason.encode("utf-8", errors="surrogatepass")) > MAX_REASON_BYTES:
        raise InvalidRequest("ReasonTooLong", f"reason must not exceed {MAX_REASON_BYTES} bytes of UTF-8")
    return reason


def _request_id(payload: dict[str, Any]) -> str | None:
    request_id = _optional_text(payload, "requestId", "InvalidRequestId")
    if request_id is not None and len(request_id) > MAX_REQUEST_ID_LENGTH:
        raise InvalidRequest(
            "RequestIdTooLong", f"requestId must not exceed {MAX_REQUEST_ID_LENGTH} characters"
        )
    return request_id


def _optional_text(payload: dict[str, Any], field: str, reason: str) -> str | None:
    value = payload.get(field)
    if value is None or isinstance(value, str):
        return value
    raise InvalidRequest(reason, f"{field} must be a string, not {_kind(value)}")


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        OversizedNumber: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _show(text: str, limit: int = 48) -> str:
    """Quote user input for an error message, cut short: a message must stay small."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
