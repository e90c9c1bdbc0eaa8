"""The real handler, end to end over loopback HTTP: every event shape, coalescing, the outcome of
each failure class, secret rotation, dead-letter failures, and secrets kept out of every output."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import pytest

import app
from zego_resume.dispatch import ResumeIncomplete
from zegosim.aws import client, drain
from zegosim.lambda_runtime import SqsPoller
from zegosim.zego import Fault

from .conftest import Local, context, load_event, sqs_event

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


# ----- every event shape ---------------------------------------------------------------------


def test_sqs_batch_resumes_every_stream_with_its_decision_time(local: Local) -> None:
    # Given the canonical SQS batch: one request with a sequence, one without
    event = load_event("sqs-batch.json")

    # When the handler runs
    answer = app.lambda_handler(event, context())

    # Then nothing is reported failed, and ZEGO applied each stream at its decision's time
    assert answer == {"batchItemFailures": []}
    assert local.zego.stream_state("stream-a") == ("resumed", 1764410000123)
    assert local.zego.stream_state("stream-b") == ("resumed", 1764410000123)
    assert local.zego.stream_state("stream-c") == ("resumed", 1764410001000)  # its SentTimestamp
    assert local.dead_letters() == []


def test_sqs_bodies_holding_eventbridge_envelopes_use_the_envelope_time(local: Local) -> None:
    answer = app.lambda_handler(load_event("sqs-eventbridge-envelopes.json"), context())

    assert answer == {"batchItemFailures": []}
    assert local.zego.stream_state("stream-d") == ("resumed", ms("2026-11-29T10:00:00"))
    assert local.zego.stream_state("stream-e") == ("resumed", ms("2026-11-29T10:00:00"))
    assert local.zego.stream_state("stream-f") == ("resumed", 1764410405000)


def test_eventbridge_event_is_resumed_and_summarised(local: Local) -> None:
    answer = app.lambda_handler(load_event("eventbridge-event.json"), context())

    assert answer["status"] == "resumed"
    assert answer["resumedStreamIds"] == 3
    assert local.zego.resumed_stream_ids() == {"stream-g", "stream-h", "stream-i"}


def test_direct_request_is_resumed_and_summarised(local: Local) -> None:
    answer = app.lambda_handler(load_event("direct-request.json"), context())

    assert answer["status"] == "resumed"
    assert answer["correlationId"] == "ban-20940"
    assert local.zego.stream_state("stream-j") == ("resumed", 1764411000000)


def test_mixed_batch_dead_letters_the_bad_and_resumes_the_good(local: Local) -> None:
    event = load_event("sqs-mixed-batch.json")

    answer = app.lambda_handler(event, context())

    assert answer == {"batchItemFailures": []}
    assert local.zego.resumed_stream_ids() == {"stream-l", "stream-m", "stream-n"}
    letters = {letter["attributes"]["OriginalMessageId"]: letter for letter in local.dead_letters()}
    bad = {record["messageId"]: record["body"] for record in event["Records"][1:4]}
    assert set(letters) == set(bad)
    for message_id, letter in letters.items():
        assert letter["body"] == bad[message_id]  # verbatim: replaying it replays the same input
        assert letter["attributes"]["ErrorCode"] == "InvalidRequest"
        assert letter["attributes"]["Source"] == "sqs"
    reasons = {letter["attributes"]["ErrorReason"] for letter in letters.values()}
    assert reasons == {"MalformedJson", "InvalidStreamIdCharacters", "EmptyStreamIds"}


def test_unrecognised_direct_event_is_dead_lettered_never_a_silent_success(local: Local) -> None:
    answer = app.lambda_handler({"hello": "world"}, context())

    assert answer["status"] == "dead-lettered"
    [letter] = local.dead_letters()
    assert letter["attributes"]["ErrorReason"] == "UnrecognisedEvent"
    assert json.loads(letter["body"]) == {"hello": "world"}
    assert local.zego.calls() == []


# ----- coalescing ----------------------------------------------------------------------------


def test_requests_sharing_a_sequence_are_packed_into_the_fewest_calls(local: Local) -> None:
    # Given 45 ids and 1 id, with the same sequence, in one batch
    many = {"streamIds": [f"s-{n}" for n in range(45)], "sequence": 1000}
    one = {"streamIds": ["s-solo"], "sequence": 1000}

    answer = app.lambda_handler(sqs_event(many, one), context())

    # Then 3 calls (20 + 20 + 6), not 4, and every id is resumed
    assert answer == {"batchItemFailures": []}
    calls = local.zego.calls()
    assert sorted(len(call.stream_ids) for call in calls) == [6, 20, 20]
    assert local.zego.resumed_stream_ids() == {*many["streamIds"], "s-solo"}


# ----- failure classes -----------------------------------------------------------------------


def test_poison_permanent_and_transient_messages_each_end_where_they_belong(local: Local) -> None:
    # Given a batch with a poison message, one ZEGO refuses for good, one that keeps failing
    # transiently, and a good one
    local.zego.inject_for_stream("refused", Fault.of_code(30006))
    local.zego.inject_for_stream("flaky", Fault.of_code(30003))
    event = sqs_event(
        "{not json",
        {"streamIds": ["refused"], "sequence": 5, "reason": "appeal", "requestId": "case-1"},
        {"streamIds": ["flaky"], "sequence": 6},
        {"streamIds": ["fine"], "sequence": 7},
    )

    # When the handler runs with little time (the transient one exhausts it)
    answer = app.lambda_handler(event, context(timeout_seconds=5))

    # Then only the transient one goes back to the queue
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-2"}]}
    letters = {letter["attributes"]["OriginalMessageId"]: letter for letter in local.dead_letters()}
    assert set(letters) == {"message-0", "message-1"}
    assert letters["message-0"]["body"] == "{not json"
    assert letters["message-0"]["attributes"]["ErrorCode"] == "InvalidRequest"
    assert letters["message-0"]["attributes"]["ErrorReason"] == "MalformedJson"
    refused = letters["message-1"]
    assert json.loads(refused["body"]) == {
        "streamIds": ["refused"],
        "sequence": 5,
        "reason": "appeal",
        "requestId": "case-1",
    }
    assert refused["attributes"]["ErrorCode"] == "30006"
    assert refused["attributes"]["Attempts"] == "1"
    assert refused["attributes"]["Source"] == "sqs"
    assert refused["attributes"]["ZegoRequestId"]
    assert local.zego.resumed_stream_ids() == {"fine"}


def test_transient_failure_on_the_last_receive_is_dead_lettered_with_its_reason(local: Local) -> None:
    # Given a message on its 5th receive (MAX_RECEIVE_COUNT=5) that ZEGO keeps failing
    local.zego.inject_for_stream("flaky", Fault.of_code(42004))
    local.zego.inject_for_stream("fine", Fault.of_code(42004), times=1)
    event = sqs_event({"streamIds": ["flaky", "fine"], "sequence": 100}, receive_count=5)

    answer = app.lambda_handler(event, context(timeout_seconds=5))

    # Then it is not handed back, and the DLQ holds exactly the failed id with the reason
    assert answer == {"batchItemFailures": []}
    [letter] = local.dead_letters()
    assert json.loads(letter["body"]) == {"streamIds": ["flaky", "fine"], "sequence": 100}
    assert letter["attributes"]["ErrorCode"] == "42004"
    assert letter["attributes"]["ReceiveCount"] == "5"


def test_retries_send_strictly_increasing_sequences(local: Local) -> None:
    # Given ZEGO fails the first two attempts transiently
    local.zego.inject(Fault.of_code(30003), Fault.http(503))

    answer = app.lambda_handler(sqs_event({"streamIds": ["s1"], "sequence": 1000}), context())

    # Then the third attempt succeeds with a higher Sequence than both before it
    assert answer == {"batchItemFailures": []}
    assert [call.sequence for call in local.zego.calls()] == ["1000", "1001", "1002"]
    assert local.zego.stale() == []
    assert local.zego.stream_state("s1") == ("resumed", 1002)


def test_a_redelivered_decision_never_repeats_an_earlier_sequence(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first receive failed all the attempts it had time for (ZEGO then counts as out:
    # its next call is a probe, made as soon as the probe interval has passed)
    monkeypatch.setenv("ZEGO_OUTAGE_PROBE_SECONDS", "0.1")
    local.zego.inject_for_stream("s1", Fault.of_code(30003))
    first = app.lambda_handler(sqs_event({"streamIds": ["s1"], "sequence": 1000}), context(4))
    assert first == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    local.zego.clear_faults()
    time.sleep(0.1)

    # When the message comes back for its second receive
    second = app.lambda_handler(
        sqs_event({"streamIds": ["s1"], "sequence": 1000}, receive_count=2), context()
    )

    # Then every Sequence sent was higher than all before it, and the last one was applied
    assert second == {"batchItemFailures": []}
    sequences = [int(call.sequence or 0) for call in local.zego.calls()]
    assert sequences == sorted(set(sequences))
    assert local.zego.stale() == []
    assert local.zego.resumed_stream_ids() == {"s1"}


def test_eventbridge_event_that_fails_transiently_raises_for_lambda_to_retry(local: Local) -> None:
    local.zego.inject_for_stream("stream-g", Fault.of_code(100000015))

    with pytest.raises(ResumeIncomplete):
        app.lambda_handler(load_event("eventbridge-event.json"), context(timeout_seconds=4))

    assert local.dead_letters() == []


def test_direct_request_refused_for_good_is_dead_lettered_without_raising(local: Local) -> None:
    # Given ZEGO refusing one of the request's two ids for good (30006 to any call holding it)
    local.zego.inject_for_stream("stream-j", Fault.of_code(30006))

    answer = app.lambda_handler(load_event("direct-request.json"), context())

    # Then the call was split: the refused id alone is dead-lettered, its neighbour resumed
    assert answer["status"] == "partially-resumed"
    [letter] = local.dead_letters()
    assert letter["attributes"]["Source"] == "direct"
    assert json.loads(letter["body"])["streamIds"] == ["stream-j"]
    assert local.zego.resumed_stream_ids() == {"stream-k"}


# ----- the secret ----------------------------------------------------------------------------


def test_secret_rotation_heals_without_a_failure(local: Local) -> None:
    # Given the function has cached the secret, which is then rotated
    assert app.lambda_handler(sqs_event({"streamIds": ["before"]}), context()) == {"batchItemFailures": []}
    local.rotate_secret()

    # When the next decision arrives
    answer = app.lambda_handler(sqs_event({"streamIds": ["after"]}), context())

    # Then ZEGO refused the stale signature once, the secret was re-read, and the call went through
    assert answer == {"batchItemFailures": []}
    assert [call.code for call in local.zego.calls()] == [0, 100000005, 0]
    assert local.zego.resumed_stream_ids() == {"before", "after"}
    assert local.dead_letters() == []


def test_a_secret_that_zego_keeps_refusing_is_a_permanent_failure(local: Local) -> None:
    local.zego.rotate_secret("0" * 32)  # ZEGO has a secret Secrets Manager does not

    answer = app.lambda_handler(sqs_event({"streamIds": ["s1"], "sequence": 9}), context())

    assert answer == {"batchItemFailures": []}
    [letter] = local.dead_letters()
    assert letter["attributes"]["ErrorCode"] == "100000005"
    assert [call.code for call in local.zego.calls()] == [100000005, 100000005]


def test_a_malformed_secret_hands_messages_back_and_names_the_missing_key(local: Local) -> None:
    client("secretsmanager", local.environment).put_secret_value(
        SecretId=local.stack.secret_id, SecretString=json.dumps({"AppId": 1, "Secret": "x" * 32})
    )

    first = app.lambda_handler(sqs_event({"streamIds": ["s1"]}), context())
    last = app.lambda_handler(sqs_event({"streamIds": ["s1"]}, receive_count=5), context())

    assert first == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert last == {"batchItemFailures": []}
    [letter] = local.dead_letters()
    assert letter["attributes"]["ErrorCode"] == "InvalidSecret"
    assert "ServerSecret" in letter["attributes"]["ErrorMessage"]
    assert local.zego.calls() == []


# ----- nothing is lost -----------------------------------------------------------------------


def test_a_dead_letter_that_cannot_be_sent_hands_the_message_back(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a DLQ that does not exist
    missing = local.stack.dead_letter_queue_url + "-missing"
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", missing)
    from zego_resume.runtime import reset_runtime

    reset_runtime()

    answer = app.lambda_handler(sqs_event("not json", {"streamIds": ["ok"]}), context())

    # Then the poison message is reported failed instead of being dropped
    assert answer == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    assert local.zego.resumed_stream_ids() == {"ok"}


@pytest.mark.timeout(300)
def test_poller_redrive_keeps_every_decision(local: Local) -> None:
    # Given decisions on the real queue, one of which ZEGO keeps failing
    local.zego.inject_for_stream("flaky", Fault.of_code(30003))
    sqs = client("sqs", local.environment)
    sqs.set_queue_attributes(QueueUrl=local.stack.queue_url, Attributes={"VisibilityTimeout": "1"})
    for body in ({"streamIds": ["ok-1", "ok-2"]}, {"streamIds": ["flaky"]}, "garbage"):
        sqs.send_message(
            QueueUrl=local.stack.queue_url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )

    # When the Lambda poller drains the queue (function timeout 3 s: one short try per receive)
    poller = SqsPoller(
        app.lambda_handler,
        local.stack.queue_url,
        local.stack.queue_arn,
        function_timeout=3,
        environment=local.environment,
    )
    # (the drain takes ~35 s on a loaded 2-core machine; the test's own limit is 300 s)
    poller.run_until_empty(idle_polls=3, max_seconds=120)

    # Then the good ids are resumed and both failures are in the DLQ with their reasons
    assert {"ok-1", "ok-2"} <= local.zego.resumed_stream_ids()
    letters = local.dead_letters()
    assert sorted(letter["attributes"]["ErrorCode"] for letter in letters) == ["30003", "InvalidRequest"]
    flaky = next(letter for letter in letters if letter["attributes"]["ErrorCode"] == "30003")
    assert flaky["attributes"]["ReceiveCount"] == "5"
    assert drain(local.stack.queue_url, local.environment) == []


# ----- rate ----------------------------------------------------------------------------------


def test_a_large_batch_stays_within_the_rate_limit(local: Local) -> None:
    # Given 50 calls' worth of distinct ids (more than two seconds of ZEGO's budget)
    bodies = [{"streamIds": [f"r{m}-{n}" for n in range(100)], "sequence": m} for m in range(10)]

    answer = app.lambda_handler(sqs_event(*bodies), context(timeout_seconds=60))

    assert answer == {"batchItemFailures": []}
    assert len(local.zego.calls()) == 50
    assert local.zego.rate_limited_count() == 0
    assert local.zego.max_calls_in_any_window() <= 20


# ----- secrets stay secret -------------------------------------------------------------------


def test_no_output_ever_holds_the_secret_or_a_signature(
    local: Local, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a rotation the function has not seen, debug logging everywhere, and failures of
    # every kind
    local.rotate_secret()
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    local.zego.inject(Fault.dropped(), Fault.garbage(), Fault.http(500), Fault.of_code(30006))
    answer = app.lambda_handler(
        sqs_event({"streamIds": ["a1"], "sequence": 1}, {"streamIds": ["a2"], "sequence": 2}, "junk"),
        context(timeout_seconds=10),
    )
    dead_letters = local.dead_letters()

    # Then neither the secret nor any signature sent appears in logs, metrics, answers or the DLQ
    captured = capfd.readouterr()
    output = "\n".join(
        [captured.out, captured.err, caplog.text, json.dumps(answer), json.dumps(dead_letters)]
    )
    signatures = {
        part.split("=", 1)[1]
        for call in local.zego.calls()
        for part in call.query.split("&")
        if part.startswith("Signature=")
    }
    assert signatures
    assert local.server_secret not in output
    for signature in signatures:
        assert signature not in output
    assert "Signature=" not in output
    assert "ZegoCalls" in captured.out  # the metrics were printed, so the check looked at them
