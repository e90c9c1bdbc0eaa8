"""Bad input through the Lambda poller: every kind lands in the DLQ on its first receive with an
ErrorCode and the rule it broke, and the good messages of the same batches are unaffected."""

from __future__ import annotations

import json

import pytest

import app
from zegosim.lambda_runtime import SqsPoller

from .conftest import Local, send_bodies

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

ENVELOPE = {"version": "0", "id": "e-1", "detail-type": "StreamBanLifted", "source": "moderation"}
BAD_INPUT: dict[str, tuple[str, str]] = {
    # kind: (body, the ErrorReason it must get)
    "not JSON": ("resume stream-a please", "MalformedJson"),
    "whitespace only": ("   ", "EmptyBody"),
    "JSON list": ('["stream-a"]', "NotAnObject"),
    "JSON string": ('"stream-a"', "NotAnObject"),
    "JSON number": ("42", "NotAnObject"),
    "JSON null": ("null", "NotAnObject"),
    "no streamIds": ('{"reason": "appeal"}', "MissingStreamIds"),
    "empty streamIds": ('{"streamIds": []}', "EmptyStreamIds"),
    "streamIds a string": ('{"streamIds": "stream-a"}', "StreamIdsNotAList"),
    "streamIds an object": ('{"streamIds": {"a": 1}}', "StreamIdsNotAList"),
    "an id that is a number": ('{"streamIds": [12345]}', "StreamIdNotAString"),
    "an empty id": ('{"streamIds": [""]}', "EmptyStreamId"),
    "an id with a space": ('{"streamIds": ["stream a"]}', "InvalidStreamIdCharacters"),
    "an id with &": ('{"streamIds": ["a&IsTest=true"]}', "InvalidStreamIdCharacters"),
    "an id with =": ('{"streamIds": ["a=b"]}', "InvalidStreamIdCharacters"),
    "an id with %": ('{"streamIds": ["a%26b"]}', "InvalidStreamIdCharacters"),
    "a non-ASCII id": ('{"streamIds": ["стрим"]}', "InvalidStreamIdCharacters"),
    "an over-long id": (json.dumps({"streamIds": ["x" * 257]}), "StreamIdTooLong"),
    "too many ids": (json.dumps({"streamIds": [f"s{n}" for n in range(1001)]}), "TooManyStreamIds"),
    "a 256 KB body": (
        json.dumps({"streamIds": [f"{n:05d}" + "y" * 200 for n in range(1250)]}),
        "TooManyStreamIds",
    ),
    "sequence negative": ('{"streamIds": ["a"], "sequence": -1}', "NegativeSequence"),
    "sequence with letters": ('{"streamIds": ["a"], "sequence": "12a"}', "SequenceNotDigits"),
    "sequence a boolean": ('{"streamIds": ["a"], "sequence": true}', "InvalidSequenceType"),
    "sequence a float": ('{"streamIds": ["a"], "sequence": 1.5}', "InvalidSequenceType"),
    "sequence too large": ('{"streamIds": ["a"], "sequence": 99999999999999999999}', "SequenceOutOfRange"),
    "reason not a string": ('{"streamIds": ["a"], "reason": 5}', "InvalidReason"),
    "requestId not a string": ('{"streamIds": ["a"], "requestId": ["x"]}', "InvalidRequestId"),
    "envelope without detail": (json.dumps(ENVELOPE), "MissingDetail"),
    "envelope with a string detail": (json.dumps({**ENVELOPE, "detail": "a"}), "NotAnObject"),
    "envelope with a bad detail": (json.dumps({**ENVELOPE, "detail": {"streamIds": 1}}), "StreamIdsNotAList"),
}


def test_every_kind_of_bad_input_is_dead_lettered_on_first_receive(local: Local) -> None:
    # Given each kind of bad input, interleaved with good decisions in the same batches
    bodies: list[str] = []
    good_ids: set[str] = set()
    for number, (body, _) in enumerate(BAD_INPUT.values()):
        bodies.append(body)
        good = {"streamIds": [f"good-{number}-a", f"good-{number}-b"], "sequence": number}
        good_ids.update(good["streamIds"])
        bodies.append(json.dumps(good))
    assert max(len(body.encode()) for body in bodies) > 250_000  # the 256 KB one is really there
    send_bodies(local, bodies)

    # When the Lambda poller drains the queue
    poller = SqsPoller(
        app.lambda_handler, local.stack.queue_url, local.stack.queue_arn, environment=local.environment
    )
    stats = poller.run_until_empty(idle_polls=2, max_seconds=60)

    # Then each bad body is in the DLQ, verbatim, with its reason, from its first receive
    letters = {letter["body"]: letter["attributes"] for letter in local.dead_letters()}
    for kind, (body, reason) in BAD_INPUT.items():
        assert body in letters, f"{kind} is not in the DLQ"
        attributes = letters[body]
        assert attributes["ErrorCode"] == "InvalidRequest", kind
        assert attributes["ErrorReason"] == reason, kind
        assert attributes["ReceiveCount"] == "1", kind
        assert attributes["ErrorMessage"], kind
    assert len(letters) == len(BAD_INPUT)
    # ... nothing was handed back, and every good decision went through
    assert stats.reported_failed == 0
    assert stats.whole_batch_failures == 0
    assert good_ids <= local.zego.resumed_stream_ids()
