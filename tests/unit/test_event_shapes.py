"""The three accepted event shapes (docs/contract.md, "Event shapes accepted"), from events/."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from devkit.events import EVENTS, load_event, sqs_event
from zego_resume.domain.delivery import Delivery
from zego_resume.event_shapes import read_event

INVOCATION = "4a0a8b5e-1f0e-4d6c-9f0e-6b1f2e3d4c5b"
NOW_MS = 1_800_000_000_000


def _read(event: object) -> list[Delivery]:
    return read_event(event, invocation_id=INVOCATION, now_ms=NOW_MS)


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).astimezone(UTC).timestamp() * 1000)


def _sqs_event(*bodies: Any, receive_count: int = 1) -> dict[str, Any]:
    return sqs_event(*bodies, receive_count=receive_count)


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda path: path.name)
def test_every_canonical_event_is_read_into_items_that_are_either_valid_or_explained(path: Any) -> None:
    items = _read(json.loads(path.read_text()))
    assert items
    for item in items:
        assert (item.request is None) != (item.invalid is None)
        assert isinstance(item.raw, str)
        assert item.key


# --- SQS --------------------------------------------------------------------------------------


def test_an_sqs_batch_gives_one_item_per_record_keyed_by_message_id() -> None:
    event = load_event("sqs-batch.json")
    items = _read(event)
    assert [item.key for item in items] == [record["messageId"] for record in event["Records"]]
    assert {item.source for item in items} == {"sqs"}
    assert [item.receive_count for item in items] == [1, 1]
    assert items[0].request is not None
    assert items[0].request.stream_ids == ("stream-a", "stream-b")
    assert items[0].request.sequence == 1764410000123
    assert (items[0].request.reason, items[0].request.request_id) == ("appeal granted", "case-8812")


def test_a_bare_sqs_body_without_sequence_takes_the_sent_timestamp() -> None:
    event = load_event("sqs-batch.json")
    item = _read(event)[1]
    assert item.request is not None
    assert item.request.sequence == int(event["Records"][1]["attributes"]["SentTimestamp"])


def test_the_sqs_body_is_kept_verbatim() -> None:
    event = load_event("sqs-batch.json")
    assert [item.raw for item in _read(event)] == [record["body"] for record in event["Records"]]


def test_the_receive_count_is_read_from_the_record() -> None:
    (item,) = _read(_sqs_event('{"streamIds": ["s"]}', receive_count=4))
    assert item.receive_count == 4


def test_an_eventbridge_envelope_in_sqs_takes_the_envelopes_time_as_fallback() -> None:
    # Given EventBridge -> SQS envelopes, the first without a sequence
    event = load_event("sqs-eventbridge-envelopes.json")
    first, second = _read(event)
    envelope = json.loads(event["Records"][0]["body"])
    # Then the first takes the envelope's time (the decision's), not the later SentTimestamp
    assert first.request is not None
    assert first.request.sequence == _ms(envelope["time"])
    assert first.request.sequence != int(event["Records"][0]["attributes"]["SentTimestamp"])
    assert first.request.stream_ids == ("stream-d", "stream-e")
    assert first.source == "sqs"
    assert first.key == event["Records"][0]["messageId"]
    assert first.raw == event["Records"][0]["body"]
    # And the second keeps its own sequence
    assert second.request is not None
    assert second.request.sequence == 1764410405000


def test_the_mixed_batch_explains_each_bad_message() -> None:
    items = _read(load_event("sqs-mixed-batch.json"))
    reasons = [item.invalid.reason if item.invalid else None for item in items]
    assert reasons == [None, "MalformedJson", "InvalidStreamIdCharacters", "EmptyStreamIds", None]


@pytest.mark.parametrize("body", ["", "   ", None], ids=["empty", "blank", "null"])
def test_an_empty_body_is_empty_body(body: str | None) -> None:
    event = _sqs_event("placeholder")
    event["Records"][0]["body"] = body
    (item,) = _read(event)
    assert item.invalid is not None
    assert item.invalid.reason == "EmptyBody"


@pytest.mark.parametrize("body", ["this is not JSON", '{"streamIds": ["a"]', "{'streamIds': ['a']}"])
def test_a_body_that_is_not_json_is_malformed_json_kept_verbatim(body: str) -> None:
    (item,) = _read(_sqs_event(body))
    assert item.invalid is not None
    assert item.invalid.reason == "MalformedJson"
    assert item.raw == body


def test_an_invalid_body_is_kept_byte_for_byte() -> None:
    body = '{ "streamIds" : [],\n  "reason": "empty by mistake",  "z": 1 }'
    (item,) = _read(_sqs_event(body))
    assert item.invalid is not None
    assert item.raw == body


def test_an_envelope_in_sqs_without_detail_is_missing_detail() -> None:
    body = json.dumps(
        {"detail-type": "StreamBanLifted", "source": "moderation", "time": "2026-11-29T10:00:00Z"}
    )
    (item,) = _read(_sqs_event(body))
    assert item.invalid is not None
    assert item.invalid.reason == "MissingDetail"


# --- EventBridge --------------------------------------------------------------------------------


def test_an_eventbridge_event_is_one_item_keyed_by_event_id() -> None:
    event = load_event("eventbridge-event.json")
    (item,) = _read(event)
    assert (item.source, item.key) == ("eventbridge", event["id"])
    assert item.request is not None
    assert item.request.stream_ids == ("stream-g", "stream-h", "stream-i")
    assert item.request.sequence == 1764410700000
    assert json.loads(item.raw) == event


def test_an_eventbridge_event_without_sequence_takes_the_event_time() -> None:
    event = load_event("eventbridge-event.json")
    del event["detail"]["sequence"]
    (item,) = _read(event)
    assert item.request is not None
    assert item.request.sequence == _ms(event["time"])


def test_an_eventbridge_event_without_detail_is_missing_detail() -> None:
    event = load_event("eventbridge-event.json")
    del event["detail"]
    (item,) = _read(event)
    assert item.invalid is not None
    assert item.invalid.reason == "MissingDetail"
    assert item.source == "eventbridge"


# --- direct -----------------------------------------------------------------------------------


def test_a_direct_request_is_keyed_by_its_request_id() -> None:
    event = load_event("direct-request.json")
    (item,) = _read(event)
    assert (item.source, item.key) == ("direct", "ban-20940")
    assert item.request is not None
    assert item.request.stream_ids == ("stream-j", "stream-k")
    assert item.request.sequence == 1764411000000


def test_a_direct_request_without_sequence_takes_the_processing_time() -> None:
    event = load_event("direct-request.json")
    del event["sequence"]
    (item,) = _read(event)
    assert item.request is not None
    assert item.request.sequence == NOW_MS


def test_a_direct_request_without_request_id_is_keyed_by_the_invocation() -> None:
    event = load_event("direct-request.json")
    del event["requestId"]
    (item,) = _read(event)
    assert item.key == INVOCATION


# --- not an accepted shape --------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": '{"streamIds": ["a"]}'}}]},
        {"Records": []},
        {"Records": [load_event("sqs-batch.json")["Records"][0], {"eventSource": "aws:kinesis"}]},
        {"detail": {"streamIds": ["a"]}},
    ],
    ids=["empty-object", "sns-records", "no-records", "sqs-and-kinesis", "detail-without-envelope"],
)
def test_anything_else_is_an_unrecognised_event(event: dict[str, Any]) -> None:
    (item,) = _read(event)
    assert item.invalid is not None
    assert item.invalid.reason == "UnrecognisedEvent"
    assert item.request is None


@pytest.mark.parametrize("event", [[], "stream-a", None], ids=["list", "string", "null"])
def test_a_non_object_event_is_not_an_object(event: object) -> None:
    (item,) = _read(event)
    assert item.invalid is not None
    assert item.invalid.reason == "NotAnObject"


@pytest.mark.parametrize("time", ["yesterday", 1764410700, None], ids=["not-iso", "number", "null"])
def test_an_eventbridge_event_with_an_unreadable_time_takes_the_processing_time(time: object) -> None:
    event = load_event("eventbridge-event.json")
    del event["detail"]["sequence"]
    event["time"] = time
    (item,) = _read(event)
    assert item.request is not None
    assert item.request.sequence == NOW_MS


def test_an_eventbridge_time_without_zone_is_read_as_utc() -> None:
    event = load_event("eventbridge-event.json")
    del event["detail"]["sequence"]
    event["time"] = "2026-11-29T10:05:00"
    (item,) = _read(event)
    assert item.request is not None
    assert item.request.sequence == _ms("2026-11-29T10:05:00+00:00")


def test_an_sqs_record_without_attributes_counts_as_first_receive_at_processing_time() -> None:
    event = _sqs_event('{"streamIds": ["s"]}')
    del event["Records"][0]["attributes"]
    (item,) = _read(event)
    assert item.receive_count == 1
    assert item.request is not None
    assert item.request.sequence == NOW_MS


def test_a_redriven_async_failure_record_replays_its_original_event() -> None:
    # Given a failed EventBridge invocation as Lambda's OnFailure destination writes it to the DLQ,
    # sent back to the resume queue by an operator's redrive
    original = load_event("eventbridge-event.json")
    record = {
        "version": "1.0",
        "timestamp": "2026-11-29T10:10:00.000Z",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": original,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "some stream ids are not resumed yet"},
    }
    # When it is read from SQS
    [item] = _read(_sqs_event(json.dumps(record)))
    # Then it is the original decision, with its own sequence
    assert item.request is not None
    assert item.request.stream_ids == tuple(original["detail"]["streamIds"])
    assert item.request.sequence == original["detail"]["sequence"]
