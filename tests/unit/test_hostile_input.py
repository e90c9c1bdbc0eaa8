"""Hostile input: nothing one record holds can fail the records batched with it. Each bad record
is dead-lettered at once with a reason; the valid ones are resumed; the invocation never raises.

The fuzz tests throw arbitrary JSON and arbitrary bytes (Hypothesis; 150 examples each, the same
every run: see the profiles in tests/conftest.py) at `read_event` and at the handler."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.events import load_event, sqs_event
from zego_resume.dispatch import handle_event
from zego_resume.domain.request import MAX_REASON_BYTES, MAX_REQUEST_ID_LENGTH
from zego_resume.event_shapes import read_event
from zego_resume.local_context import LocalContext

from .fakes import FakeDeadLetters, FakeGateway, fake_runtime

VALID = [{"streamIds": [f"valid-{n}-a", f"valid-{n}-b"], "sequence": 1764410000000 + n} for n in range(4)]
VALID_IDS = {stream_id for request in VALID for stream_id in request["streamIds"]}


def _reason(body: str) -> str:
    (delivery,) = read_event(sqs_event(body), invocation_id="invocation")
    assert delivery.invalid is not None, f"accepted: {body[:80]!r}"
    return delivery.invalid.reason


def _handle_batch(*bodies: str | dict[str, Any]) -> tuple[dict[str, Any], FakeGateway, FakeDeadLetters]:
    gateway, dead_letters = FakeGateway(default=0), FakeDeadLetters()
    answer = handle_event(
        sqs_event(*bodies), LocalContext(), fake_runtime(gateway, dead_letters=dead_letters)
    )
    return answer, gateway, dead_letters


# --- the review's findings, one by one ---------------------------------------------------------


def test_a_body_nested_five_thousand_deep_is_malformed_json_and_fails_nothing_else() -> None:
    # Given four valid decisions batched with a body of 5,000 nested brackets
    poison = "[" * 5000
    # When the batch is handled
    answer, gateway, dead_letters = _handle_batch(*VALID, poison)
    # Then the four are resumed, the poison is dead-lettered with its reason, and none goes back
    assert answer == {"batchItemFailures": []}
    assert {stream_id for call in gateway.calls for stream_id in call.stream_ids} == VALID_IDS
    (letter,) = dead_letters.sent
    assert (letter.attributes["ErrorCode"], letter.attributes["ErrorReason"]) == (
        "InvalidRequest",
        "MalformedJson",
    )
    assert letter.body == poison


@pytest.mark.parametrize(
    "body",
    [
        '{"streamIds": ["a"], "sequence": "' + "9" * 5000 + '"}',
        '{"streamIds": ["a"], "sequence": ' + "9" * 5000 + "}",
        '{"streamIds": ["a"], "sequence": "' + "9" * 20 + '"}',
        '{"streamIds": ["a"], "sequence": ' + "9" * 20 + "}",
    ],
    ids=["5000-digit-string", "5000-digit-number", "20-digit-string", "20-digit-number"],
)
def test_a_sequence_of_too_many_digits_is_out_of_range(body: str) -> None:
    assert _reason(body) == "SequenceOutOfRange"


def test_a_sequence_of_too_many_digits_fails_nothing_else() -> None:
    answer, gateway, dead_letters = _handle_batch(
        *VALID, '{"streamIds": ["a"], "sequence": "' + "9" * 5000 + '"}'
    )
    assert answer == {"batchItemFailures": []}
    assert {stream_id for call in gateway.calls for stream_id in call.stream_ids} == VALID_IDS
    assert [letter.attributes["ErrorReason"] for letter in dead_letters.sent] == ["SequenceOutOfRange"]


@pytest.mark.parametrize(
    "body",
    [
        '{"streamIds": ["a"], "streamIds": ["b"]}',
        '{"streamIds": ["a"], "sequence": 1, "sequence": 2}',
        '{"detail-type": "T", "source": "s", "detail": {"streamIds": ["a"], "reason": "x", "reason": "y"}}',
    ],
    ids=["stream-ids", "sequence", "inside-an-envelope"],
)
def test_a_key_given_twice_is_a_duplicate_key_not_last_wins(body: str) -> None:
    assert _reason(body) == "DuplicateKey"


def test_a_reason_over_one_kib_is_too_long() -> None:
    assert (
        _reason(json.dumps({"streamIds": ["a"], "reason": "é" * (MAX_REASON_BYTES // 2 + 1)}))
        == "ReasonTooLong"
    )
    assert read_event(sqs_event({"streamIds": ["a"], "reason": "x" * MAX_REASON_BYTES}), invocation_id="i")[
        0
    ].request


def test_a_request_id_over_256_characters_is_too_long() -> None:
    too_long = {"streamIds": ["a"], "requestId": "r" * (MAX_REQUEST_ID_LENGTH + 1)}
    assert _reason(json.dumps(too_long)) == "RequestIdTooLong"
    fits = {"streamIds": ["a"], "requestId": "r" * MAX_REQUEST_ID_LENGTH}
    assert read_event(sqs_event(fits), invocation_id="i")[0].request


def test_a_direct_request_with_a_huge_request_id_is_not_keyed_by_it() -> None:
    # Given a direct request whose requestId is 100 KB
    event = {"streamIds": ["a"], "requestId": "r" * 100_000}
    dead_letters = FakeDeadLetters()
    # When it is handled
    answer = handle_event(
        event,
        LocalContext(aws_request_id="invocation-1"),
        fake_runtime(FakeGateway(), dead_letters=dead_letters),
    )
    # Then it is dead-lettered as too long, and the letter is keyed by the invocation, not the 100 KB
    assert answer["status"] == "dead-lettered"
    (letter,) = dead_letters.sent
    assert letter.attributes["ErrorReason"] == "RequestIdTooLong"
    assert letter.attributes["OriginalMessageId"] == "invocation-1"


@pytest.mark.parametrize(
    ("time", "reason"),
    [("0001-01-01T00:00:00Z", "SequenceOutOfRange"), ("9999-12-31T23:59:59Z", None)],
    ids=["year-1", "year-9999"],
)
def test_an_eventbridge_time_is_range_checked_like_a_given_sequence(time: str, reason: str | None) -> None:
    event = load_event("eventbridge-event.json")
    del event["detail"]["sequence"]
    event["time"] = time
    (delivery,) = read_event(event, invocation_id="i")
    if reason is None:
        assert delivery.request is not None
        assert delivery.request.sequence == 253402300799000
    else:
        assert delivery.invalid is not None
        assert delivery.invalid.reason == reason


def test_characters_sqs_refuses_never_reach_a_dead_letter_attribute() -> None:
    # Given a direct request ZEGO refuses, whose requestId carries a NUL, an escape and a lone surrogate
    request_id = "case\x00-\x1b[31m-\ud800"
    dead_letters = FakeDeadLetters()
    handle_event(
        {"streamIds": ["a"], "requestId": request_id},
        LocalContext(),
        fake_runtime(FakeGateway(default=30006), dead_letters=dead_letters),
    )
    # Then every attribute of its letter is made of characters SQS accepts
    (letter,) = dead_letters.sent
    for value in letter.attributes.values():
        assert all(
            ch in "\t\n\r" or "\x20" <= ch <= "\ud7ff" or "\ue000" <= ch <= "\ufffd" or ch >= "\U00010000"
            for ch in value
        ), value
    assert letter.attributes["OriginalMessageId"].startswith("case")
    # ... and the body, which replays the request, still carries the requestId exactly (JSON-escaped)
    assert json.loads(letter.body)["requestId"] == request_id


def test_a_record_that_breaks_the_reader_is_dead_lettered_and_fails_nothing_else() -> None:
    # Given a record whose body misbehaves when read (a shape nobody foresaw)
    class Treacherous(str):
        def strip(self, chars: str | None = None) -> str:
            raise RuntimeError("boom")

    event = sqs_event(*VALID, "placeholder")
    event["Records"][-1]["body"] = Treacherous('{"streamIds": ["x"]}')
    dead_letters = FakeDeadLetters()
    gateway = FakeGateway(default=0)
    # When the batch is handled
    answer = handle_event(event, LocalContext(), fake_runtime(gateway, dead_letters=dead_letters))
    # Then that record alone is dead-lettered, with the reason, and the others are resumed
    assert answer == {"batchItemFailures": []}
    (letter,) = dead_letters.sent
    assert letter.attributes["ErrorReason"] == "UnreadableRecord"
    assert {stream_id for call in gateway.calls for stream_id in call.stream_ids} == VALID_IDS


# --- fuzz ---------------------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
# Requests that get past the first checks, so the fuzz reaches the deeper rules too.
_near_requests = st.fixed_dictionaries(
    {"streamIds": st.lists(_json_values | st.text(max_size=300), max_size=4)},
    optional={
        "sequence": _json_values | st.text(alphabet="0123456789-", max_size=30),
        "reason": _json_values,
        "requestId": _json_values,
    },
)
_bodies = st.one_of(
    _json_values.map(json.dumps),
    _near_requests.map(json.dumps),
    st.binary(max_size=200).map(lambda raw: raw.decode("utf-8", errors="replace")),
    st.text(max_size=200),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=_bodies)
def test_fuzz_read_event_never_raises_and_explains_every_rejection(body: str) -> None:
    (delivery,) = read_event(sqs_event(body), invocation_id="invocation")
    assert (delivery.request is None) != (delivery.invalid is None)
    if delivery.invalid is not None:
        assert delivery.invalid.reason
        assert delivery.invalid.message


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(_bodies, min_size=1, max_size=6))
def test_fuzz_a_batch_resumes_the_valid_and_dead_letters_the_rest_with_a_reason(bodies: list[str]) -> None:
    # Given four valid decisions batched with arbitrary bodies
    answer, gateway, dead_letters = _handle_batch(*VALID, *bodies)
    # Then nothing goes back to the queue, the valid ids were all sent, and every other record is
    # either a valid request by chance (sent too) or dead-lettered with its reason
    assert answer == {"batchItemFailures": []}
    sent = {stream_id for call in gateway.calls for stream_id in call.stream_ids}
    assert sent >= VALID_IDS
    letters = {letter.attributes["OriginalMessageId"]: letter for letter in dead_letters.sent}
    for index, _ in enumerate(bodies, start=len(VALID)):
        letter = letters.get(f"message-{index}")
        if letter is not None:
            assert letter.attributes["ErrorCode"] == "InvalidRequest"
            assert letter.attributes["ErrorReason"]
    assert set(letters) <= {f"message-{index}" for index in range(len(VALID), len(VALID) + len(bodies))}
