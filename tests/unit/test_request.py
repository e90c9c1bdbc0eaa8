"""Validation of a resume request (docs/contract.md, "A resume request")."""

from __future__ import annotations

from typing import Any

import pytest

from zego_resume.domain.request import (
    InvalidRequest,
    ResumeRequest,
    parse_resume_request,
    require_test_prefix,
)

FALLBACK = 1_764_410_000_999


def _parse(payload: object) -> ResumeRequest:
    return parse_resume_request(payload, fallback_sequence=FALLBACK)


# --- the valid form -------------------------------------------------------------------------------


def test_a_full_request_keeps_every_field() -> None:
    request = _parse(
        {
            "streamIds": ["stream-a", "stream-b"],
            "sequence": 1764410000123,
            "reason": "appeal granted",
            "requestId": "case-8812",
        }
    )
    assert request == ResumeRequest(
        stream_ids=("stream-a", "stream-b"),
        sequence=1764410000123,
        reason="appeal granted",
        request_id="case-8812",
    )


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [(1764410000123, 1764410000123), ("1764410000123", 1764410000123), (0, 0), ("0", 0)],
    ids=["int", "digit-string", "zero", "zero-string"],
)
def test_sequence_is_an_integer_or_a_string_of_digits(sequence: object, expected: int) -> None:
    assert _parse({"streamIds": ["s"], "sequence": sequence}).sequence == expected


@pytest.mark.parametrize("payload", [{"streamIds": ["s"]}, {"streamIds": ["s"], "sequence": None}])
def test_the_fallback_sequence_is_used_when_the_request_has_none(payload: dict[str, Any]) -> None:
    assert _parse(payload).sequence == FALLBACK


def test_duplicate_stream_ids_collapse_keeping_first_order() -> None:
    request = _parse({"streamIds": ["b", "a", "b", "c", "a"]})
    assert request.stream_ids == ("b", "a", "c")


def test_unknown_fields_are_ignored() -> None:
    request = _parse({"streamIds": ["s"], "priority": "high", "extra": {"x": [1]}})
    assert request.stream_ids == ("s",)


def test_reason_and_request_id_are_optional() -> None:
    request = _parse({"streamIds": ["s"]})
    assert (request.reason, request.request_id) == (None, None)


def test_an_id_of_256_characters_is_accepted() -> None:
    stream_id = "a" * 256
    assert _parse({"streamIds": [stream_id]}).stream_ids == (stream_id,)


def test_1000_stream_ids_are_accepted() -> None:
    ids = [f"stream-{index}" for index in range(1000)]
    assert _parse({"streamIds": ids}).stream_ids == tuple(ids)


def test_the_full_charset_is_accepted() -> None:
    stream_id = "ABCXYZ-abcxyz_0189"
    assert _parse({"streamIds": [stream_id]}).stream_ids == (stream_id,)


def test_with_stream_ids_replays_only_the_given_ids_with_the_same_decision() -> None:
    # Given a request of three ids
    request = _parse({"streamIds": ["a", "b", "c"], "sequence": 42, "reason": "r", "requestId": "q"})
    # When its failed part is turned back into a request
    body = request.with_stream_ids(("b",))
    # Then it is that part only, with the same sequence, reason and requestId
    assert body == {"streamIds": ["b"], "sequence": 42, "reason": "r", "requestId": "q"}
    assert _parse(body).stream_ids == ("b",)


def test_with_stream_ids_omits_absent_optional_fields() -> None:
    body = _parse({"streamIds": ["a"], "sequence": 7}).with_stream_ids(("a",))
    assert body == {"streamIds": ["a"], "sequence": 7}


# --- bad input: each kind with its own reason -------------------------------------------------


BAD_REQUESTS = [
    pytest.param([], "NotAnObject", id="list"),
    pytest.param("streamIds", "NotAnObject", id="string"),
    pytest.param(None, "NotAnObject", id="null"),
    pytest.param(42, "NotAnObject", id="number"),
    pytest.param({}, "MissingStreamIds", id="missing-stream-ids"),
    pytest.param({"streamId": ["a"]}, "MissingStreamIds", id="misspelt-stream-ids"),
    pytest.param({"streamIds": "stream-a"}, "StreamIdsNotAList", id="stream-ids-a-string"),
    pytest.param({"streamIds": {"a": 1}}, "StreamIdsNotAList", id="stream-ids-an-object"),
    pytest.param({"streamIds": None}, "StreamIdsNotAList", id="stream-ids-null"),
    pytest.param({"streamIds": []}, "EmptyStreamIds", id="empty-stream-ids"),
    pytest.param({"streamIds": [f"s{n}" for n in range(1001)]}, "TooManyStreamIds", id="1001-ids"),
    pytest.param({"streamIds": ["a", 7]}, "StreamIdNotAString", id="id-a-number"),
    pytest.param({"streamIds": [None]}, "StreamIdNotAString", id="id-null"),
    pytest.param({"streamIds": [["a"]]}, "StreamIdNotAString", id="id-a-list"),
    pytest.param({"streamIds": [""]}, "EmptyStreamId", id="empty-id"),
    pytest.param({"streamIds": ["a" * 257]}, "StreamIdTooLong", id="257-char-id"),
    pytest.param({"streamIds": ["a b"]}, "InvalidStreamIdCharacters", id="space"),
    pytest.param({"streamIds": ["a&Action=ForbidRTCStreams"]}, "InvalidStreamIdCharacters", id="ampersand"),
    pytest.param({"streamIds": ["a=b"]}, "InvalidStreamIdCharacters", id="equals"),
    pytest.param({"streamIds": ["a%26b"]}, "InvalidStreamIdCharacters", id="percent"),
    pytest.param({"streamIds": ["a/b"]}, "InvalidStreamIdCharacters", id="slash"),
    pytest.param({"streamIds": ["stréam"]}, "InvalidStreamIdCharacters", id="non-ascii-letter"),
    pytest.param({"streamIds": ["stream\uff11"]}, "InvalidStreamIdCharacters", id="full-width-digit"),
    pytest.param({"streamIds": ["stream-a\n"]}, "InvalidStreamIdCharacters", id="trailing-newline"),
    pytest.param({"streamIds": ["a.b"]}, "InvalidStreamIdCharacters", id="dot"),
    pytest.param({"streamIds": ["s"], "sequence": True}, "InvalidSequenceType", id="sequence-bool"),
    pytest.param({"streamIds": ["s"], "sequence": 1764410000.5}, "InvalidSequenceType", id="sequence-float"),
    pytest.param({"streamIds": ["s"], "sequence": [1]}, "InvalidSequenceType", id="sequence-list"),
    pytest.param({"streamIds": ["s"], "sequence": {"ms": 1}}, "InvalidSequenceType", id="sequence-object"),
    pytest.param({"streamIds": ["s"], "sequence": "12a"}, "SequenceNotDigits", id="sequence-12a"),
    pytest.param(
        {"streamIds": ["s"], "sequence": "\uff11\uff12"}, "SequenceNotDigits", id="sequence-full-width"
    ),
    pytest.param({"streamIds": ["s"], "sequence": "-5"}, "SequenceNotDigits", id="sequence-minus-string"),
    pytest.param({"streamIds": ["s"], "sequence": ""}, "SequenceNotDigits", id="sequence-empty-string"),
    pytest.param({"streamIds": ["s"], "sequence": " 12"}, "SequenceNotDigits", id="sequence-padded"),
    pytest.param({"streamIds": ["s"], "sequence": "1e3"}, "SequenceNotDigits", id="sequence-exponent"),
    pytest.param({"streamIds": ["s"], "sequence": -1}, "NegativeSequence", id="negative-sequence"),
    # ZEGO compares sequences as 64-bit integers: 2**63 is beyond any of them.
    pytest.param({"streamIds": ["s"], "sequence": 2**63}, "SequenceOutOfRange", id="sequence-2-pow-63"),
    pytest.param({"streamIds": ["s"], "sequence": "9" * 20}, "SequenceOutOfRange", id="sequence-20-digits"),
    pytest.param({"streamIds": ["s"], "reason": 5}, "InvalidReason", id="reason-number"),
    pytest.param({"streamIds": ["s"], "reason": ["x"]}, "InvalidReason", id="reason-list"),
    pytest.param({"streamIds": ["s"], "requestId": 8812}, "InvalidRequestId", id="request-id-number"),
    pytest.param({"streamIds": ["s"], "requestId": True}, "InvalidRequestId", id="request-id-bool"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD_REQUESTS)
def test_bad_input_is_rejected_with_its_own_reason(payload: object, reason: str) -> None:
    # Given a request that breaks one rule / When it is parsed / Then it is rejected naming that rule
    with pytest.raises(InvalidRequest) as raised:
        _parse(payload)
    assert raised.value.reason == reason
    assert raised.value.message  # a human-readable explanation goes to the DLQ with it


def test_an_invalid_id_is_rejected_even_among_valid_ones() -> None:
    with pytest.raises(InvalidRequest) as raised:
        _parse({"streamIds": ["ok-1", "ok-2", "not ok"]})
    assert raised.value.reason == "InvalidStreamIdCharacters"


def test_the_rejection_message_stays_short_for_a_huge_id() -> None:
    with pytest.raises(InvalidRequest) as raised:
        _parse({"streamIds": ["&" * 200]})
    assert len(str(raised.value)) < 200


# --- the test-environment prefix ---------------------------------------------------------------


def test_ids_with_the_test_prefix_pass() -> None:
    request = _parse({"streamIds": ["zegotest-123-a", "zegotest-123-b"]})
    require_test_prefix(request, 123)  # does not raise


@pytest.mark.parametrize(
    "stream_id",
    ["stream-a", "zegotest-a", "zegotest-1234-a", "zegotest-12-a", "Zegotest-123-a"],
    ids=["no-prefix", "no-app-id", "longer-app-id", "shorter-app-id", "capitalised"],
)
def test_an_id_without_this_apps_test_prefix_is_rejected(stream_id: str) -> None:
    request = _parse({"streamIds": ["zegotest-123-ok", stream_id]})
    with pytest.raises(InvalidRequest) as raised:
        require_test_prefix(request, 123)
    assert raised.value.reason == "MissingTestPrefix"
    assert "zegotest-123-" in raised.value.message
