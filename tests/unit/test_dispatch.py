"""One invocation from event to answer, with a Runtime built over fakes (docs/contract.md, "Outcomes")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from devkit.events import load_event, sqs_event
from zego_resume import runtime as runtime_module
from zego_resume.adapters.zego_client import ZegoClient
from zego_resume.config import ConfigurationError
from zego_resume.dispatch import ResumeIncomplete, handle_event
from zego_resume.local_context import LocalContext
from zego_resume.ports import DeadLetter, SecretError, TransportError
from zego_resume.runtime import Runtime

from .fakes import (
    FakeCredentials,
    FakeDeadLetters,
    FakeGateway,
    fake_runtime,
)

DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/zego-resume-dlq"
MAX_RECEIVE_COUNT = 5


def _runtime(
    gateway: FakeGateway,
    *,
    dead_letters: Any = None,
    max_receive_count: int | None = MAX_RECEIVE_COUNT,
    credentials: FakeCredentials | None = None,
    is_test: bool = False,
) -> Runtime:
    return fake_runtime(
        gateway,
        dead_letters=dead_letters,
        max_receive_count=max_receive_count,
        credentials=credentials,
        is_test=is_test,
    )


def _handle(event: object, runtime: Runtime) -> dict[str, Any]:
    return handle_event(event, LocalContext(), runtime)


def _failed_ids(answer: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def _by_message(letters: Sequence[DeadLetter]) -> dict[str, DeadLetter]:
    return {letter.attributes["OriginalMessageId"]: letter for letter in letters}


WIDE = {
    "streamIds": [f"stream-{index}" for index in range(25)],
    "sequence": 1764410000123,
    "reason": "appeal granted",
    "requestId": "case-9000",
}


# --- SQS ----------------------------------------------------------------------------------------


def test_sqs_batch_all_resumed_reports_no_failure_and_no_letter() -> None:
    dead_letters = FakeDeadLetters()
    gateway = FakeGateway(default=0)
    answer = _handle(load_event("sqs-batch.json"), _runtime(gateway, dead_letters=dead_letters))
    assert answer == {"batchItemFailures": []}
    assert dead_letters.sent == []
    assert sorted(sid for call in gateway.calls for sid in call.stream_ids) == [
        "stream-a",
        "stream-b",
        "stream-c",
    ]


def test_sqs_mixed_batch_dead_letters_the_invalid_messages_verbatim_and_acknowledges_them() -> None:
    # Given the canonical mixed batch: two valid messages and three that can never succeed
    event = load_event("sqs-mixed-batch.json")
    dead_letters = FakeDeadLetters()
    gateway = FakeGateway(default=0)
    # When it is handled
    answer = _handle(event, _runtime(gateway, dead_letters=dead_letters))
    # Then no message goes back to the queue
    assert answer == {"batchItemFailures": []}
    # And each invalid message is dead-lettered as it arrived, with the rule it broke
    records = {record["messageId"]: record for record in event["Records"]}
    letters = _by_message(dead_letters.sent)
    expected_reasons = {
        event["Records"][1]["messageId"]: "MalformedJson",
        event["Records"][2]["messageId"]: "InvalidStreamIdCharacters",
        event["Records"][3]["messageId"]: "EmptyStreamIds",
    }
    assert set(letters) == set(expected_reasons)
    for message_id, reason in expected_reasons.items():
        letter = letters[message_id]
        assert letter.body == records[message_id]["body"]
        assert letter.attributes["ErrorCode"] == "InvalidRequest"
        assert letter.attributes["ErrorReason"] == reason
        assert letter.attributes["Source"] == "sqs"
        assert letter.attributes["ErrorMessage"]
    # And only valid ids ever reached ZEGO
    sent = sorted(sid for call in gateway.calls for sid in call.stream_ids)
    assert sent == ["stream-l", "stream-m", "stream-n"]


def test_sqs_transient_failure_goes_back_to_the_queue_without_a_letter() -> None:
    # Given ZEGO failing transiently for the second message's stream only
    event = load_event("sqs-batch.json")
    dead_letters = FakeDeadLetters()
    runtime = _runtime(FakeGateway(by_stream={"stream-c": 30003}), dead_letters=dead_letters)
    # When the batch is handled on its first receive
    answer = _handle(event, runtime)
    # Then that message alone is handed back, and nothing is dead-lettered
    assert _failed_ids(answer) == [event["Records"][1]["messageId"]]
    assert dead_letters.sent == []


def test_sqs_transient_failure_on_the_last_receive_is_dead_lettered_with_only_the_failed_ids() -> None:
    # Given a 25-id message on its last receive, and ZEGO failing transiently for one of its calls
    event = sqs_event(WIDE, receive_count=MAX_RECEIVE_COUNT)
    gateway = FakeGateway(by_stream={"stream-24": 30003}, default=0)
    dead_letters = FakeDeadLetters()
    # When it is handled
    answer = _handle(event, _runtime(gateway, dead_letters=dead_letters))
    # Then it is not handed back: its failed part is dead-lettered with the reason
    assert _failed_ids(answer) == []
    (letter,) = dead_letters.sent
    (failed_call,) = {call.stream_ids for call in gateway.calls if "stream-24" in call.stream_ids}
    body = json.loads(letter.body)
    assert sorted(body["streamIds"]) == sorted(failed_call)
    assert body["sequence"] == WIDE["sequence"]
    assert (body["reason"], body["requestId"]) == (WIDE["reason"], WIDE["requestId"])
    assert letter.attributes["ErrorCode"] == "30003"
    assert letter.attributes["ErrorMessage"]
    assert letter.attributes["OriginalMessageId"] == "message-0"
    assert int(letter.attributes["Attempts"]) > 1


def test_sqs_transient_failure_without_max_receive_count_always_goes_back() -> None:
    event = sqs_event(WIDE, receive_count=50)
    dead_letters = FakeDeadLetters()
    runtime = _runtime(FakeGateway(default=30003), dead_letters=dead_letters, max_receive_count=None)
    assert _failed_ids(_handle(event, runtime)) == ["message-0"]
    assert dead_letters.sent == []


def test_sqs_permanent_failure_is_dead_lettered_with_only_the_failed_ids_and_acknowledged() -> None:
    # Given a 25-id message and ZEGO refusing one of its calls for good
    event = sqs_event(WIDE)
    gateway = FakeGateway(by_stream={"stream-3": 30006}, default=0)
    dead_letters = FakeDeadLetters()
    # When it is handled
    answer = _handle(event, _runtime(gateway, dead_letters=dead_letters))
    # Then the message is acknowledged and the id ZEGO refuses alone is dead-lettered: the call
    # that held it was split in halves until only that id was left
    assert _failed_ids(answer) == []
    (letter,) = dead_letters.sent
    body = json.loads(letter.body)
    assert body["streamIds"] == ["stream-3"]
    assert body["sequence"] == WIDE["sequence"]
    assert letter.attributes["ErrorCode"] == "30006"
    assert letter.attributes["ZegoRequestId"]
    assert letter.attributes["Source"] == "sqs"


def test_sqs_transient_and_permanent_parts_before_the_last_receive_go_back_whole() -> None:
    event = sqs_event(WIDE)
    dead_letters = FakeDeadLetters()
    gateway = FakeGateway(by_stream={"stream-3": 30006, "stream-24": 30003}, default=0)
    answer = _handle(event, _runtime(gateway, dead_letters=dead_letters))
    assert _failed_ids(answer) == ["message-0"]
    assert dead_letters.sent == []


def test_sqs_message_whose_dead_letter_cannot_be_sent_goes_back_to_the_queue() -> None:
    # Given a DLQ that accepts nothing and a message ZEGO refuses for good
    event = load_event("sqs-batch.json")
    runtime = _runtime(FakeGateway(by_stream={"stream-c": 30006}), dead_letters=FakeDeadLetters(accept=False))
    # When it is handled
    answer = _handle(event, runtime)
    # Then the message is handed back rather than dropped; the resumed one is acknowledged
    assert _failed_ids(answer) == [event["Records"][1]["messageId"]]


def test_sqs_invalid_messages_whose_letters_cannot_be_sent_go_back_to_the_queue() -> None:
    event = load_event("sqs-mixed-batch.json")
    runtime = _runtime(FakeGateway(default=0), dead_letters=FakeDeadLetters(accept=False))
    answer = _handle(event, runtime)
    assert _failed_ids(answer) == [record["messageId"] for record in event["Records"][1:4]]


def test_sqs_unreadable_secret_hands_every_message_back() -> None:
    event = load_event("sqs-batch.json")
    credentials = FakeCredentials(error=SecretError("SecretUnavailable", "could not read the ZEGO secret"))
    dead_letters = FakeDeadLetters()
    answer = _handle(
        event, _runtime(FakeGateway(default=0), credentials=credentials, dead_letters=dead_letters)
    )
    assert _failed_ids(answer) == [record["messageId"] for record in event["Records"]]
    assert dead_letters.sent == []


def test_sqs_test_mode_rejection_is_dead_lettered_as_an_invalid_request() -> None:
    event = sqs_event({"streamIds": ["zegotest-123-a"]}, {"streamIds": ["stream-b"]})
    dead_letters = FakeDeadLetters()
    runtime = _runtime(
        FakeGateway(default=0),
        credentials=FakeCredentials(app_id=123),
        is_test=True,
        dead_letters=dead_letters,
    )
    answer = _handle(event, runtime)
    assert _failed_ids(answer) == []
    (letter,) = dead_letters.sent
    assert letter.attributes["OriginalMessageId"] == "message-1"
    assert (letter.attributes["ErrorCode"], letter.attributes["ErrorReason"]) == (
        "InvalidRequest",
        "MissingTestPrefix",
    )
    assert letter.body == event["Records"][1]["body"]


def test_dead_letters_never_carry_the_secret() -> None:
    event = sqs_event(WIDE, receive_count=MAX_RECEIVE_COUNT)
    dead_letters = FakeDeadLetters()
    credentials = FakeCredentials()
    secret = credentials.current().server_secret
    _handle(
        event, _runtime(FakeGateway(default=100000005), credentials=credentials, dead_letters=dead_letters)
    )
    assert dead_letters.sent
    for letter in dead_letters.sent:
        assert secret not in letter.body
        assert all(secret not in value for value in letter.attributes.values())


# --- EventBridge and direct invocations ---------------------------------------------------------

ASYNC_EVENTS = [
    pytest.param("eventbridge-event.json", "eventbridge", id="eventbridge"),
    pytest.param("direct-request.json", "direct", id="direct"),
]


def _correlation_id(event: dict[str, Any], source: str) -> str:
    return event["id"] if source == "eventbridge" else event["requestId"]


@pytest.mark.parametrize(("name", "source"), ASYNC_EVENTS)
def test_async_success_answers_a_summary(name: str, source: str) -> None:
    event = load_event(name)
    answer = _handle(event, _runtime(FakeGateway(default=0)))
    assert answer["status"] == "resumed"
    assert answer["correlationId"] == _correlation_id(event, source)
    assert answer["resumedStreamIds"] == len((event.get("detail") or event)["streamIds"])
    assert answer["deadLettered"] == []


@pytest.mark.parametrize(("name", "source"), ASYNC_EVENTS)
def test_async_transient_failure_raises_so_lambda_retries(name: str, source: str) -> None:
    dead_letters = FakeDeadLetters()
    with pytest.raises(ResumeIncomplete):
        _handle(load_event(name), _runtime(FakeGateway(default=30003), dead_letters=dead_letters))
    assert dead_letters.sent == []


@pytest.mark.parametrize(("name", "source"), ASYNC_EVENTS)
def test_async_permanent_failure_is_dead_lettered_and_answered_without_raising(
    name: str, source: str
) -> None:
    event = load_event(name)
    request = event.get("detail") or event
    dead_letters = FakeDeadLetters()
    answer = _handle(event, _runtime(FakeGateway(default=30006), dead_letters=dead_letters))
    assert answer["status"] == "dead-lettered"
    assert answer["resumedStreamIds"] == 0
    assert [entry["errorCode"] for entry in answer["deadLettered"]] == ["30006"]
    (letter,) = dead_letters.sent
    assert letter.attributes["Source"] == source
    assert letter.attributes["OriginalMessageId"] == _correlation_id(event, source)
    assert json.loads(letter.body) == request


@pytest.mark.parametrize(("name", "source"), ASYNC_EVENTS)
def test_async_dead_letter_that_cannot_be_sent_raises(name: str, source: str) -> None:
    runtime = _runtime(FakeGateway(default=30006), dead_letters=FakeDeadLetters(accept=False))
    with pytest.raises(ResumeIncomplete):
        _handle(load_event(name), runtime)


def test_async_partial_success_is_reported_as_such() -> None:
    dead_letters = FakeDeadLetters()
    answer = _handle(
        dict(WIDE), _runtime(FakeGateway(by_stream={"stream-3": 30006}), dead_letters=dead_letters)
    )
    assert answer["status"] == "partially-resumed"
    (letter,) = dead_letters.sent
    assert answer["resumedStreamIds"] == len(WIDE["streamIds"]) - len(json.loads(letter.body)["streamIds"])


def test_an_unrecognised_direct_event_is_dead_lettered_not_silently_accepted() -> None:
    dead_letters = FakeDeadLetters()
    gateway = FakeGateway(default=0)
    answer = _handle({}, _runtime(gateway, dead_letters=dead_letters))
    assert answer["status"] == "dead-lettered"
    (letter,) = dead_letters.sent
    assert (letter.attributes["ErrorCode"], letter.attributes["ErrorReason"]) == (
        "InvalidRequest",
        "UnrecognisedEvent",
    )
    assert gateway.calls == []


# --- metrics and the runtime --------------------------------------------------------------------


def _total(value: float | list[float]) -> float:
    # EMF writes a metric's value as a number or as a list of them.
    return sum(value) if isinstance(value, list) else value


def test_errors_are_counted_by_code_in_their_own_metric_blob(capsys: pytest.CaptureFixture[str]) -> None:
    _handle(load_event("sqs-batch.json"), _runtime(FakeGateway(by_stream={"stream-c": 30003})))
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    by_code = {blob["ErrorCode"]: _total(blob["ZegoErrors"]) for blob in blobs if "ZegoErrors" in blob}
    assert by_code == {"30003": 8}  # eight attempts, every one answered 30003


def test_without_a_runtime_a_missing_variable_is_reported_when_an_event_arrives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ZEGO_SECRET_ID", raising=False)
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", DLQ_URL)
    with pytest.raises(ConfigurationError, match="ZEGO_SECRET_ID"):
        handle_event(load_event("direct-request.json"), LocalContext())


def test_the_runtime_is_built_once_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZEGO_SECRET_ID", "zego/credentials")
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", DLQ_URL)
    monkeypatch.setenv("ZEGO_MAX_CALLS_PER_SECOND", "7")
    prepared: list[object] = []  # no network in unit tests: record the connection it would open
    monkeypatch.setattr(ZegoClient, "prepare", lambda self: prepared.append(self))
    first = runtime_module.runtime()
    assert runtime_module.runtime() is first
    assert first.settings.max_calls_per_second == 7
    # and ZEGO's connection is opened once, ahead of the first call
    assert len(prepared) == 1


def test_a_ledger_out_of_reach_is_said_once_and_counted_while_the_work_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given an environment whose fleet ledger refuses every request (AccessDenied, say)
    from dataclasses import replace

    from zego_resume.adapters.rate_budget import LocalSchedule, SlotDispenser, slot_interval
    from zego_resume.adapters.rate_ledger import DynamoLedger

    class Refusing:
        def update_item(self, **_: Any) -> Any:
            error = RuntimeError("denied")
            error.response = {"Error": {"Code": "AccessDeniedException"}}  # type: ignore[attr-defined]
            raise error

    gateway = FakeGateway()
    budget = SlotDispenser(
        DynamoLedger(
            "ledger",
            slot_interval(20, 0.04),
            key=lambda: "zego-rate#1",
            fallback=LocalSchedule(slot_interval(10, 0.04)),
            client_factory=Refusing,
        )
    )
    base = _runtime(gateway)
    runtime = replace(base, budget=budget)
    runtime.resumer._budget = budget  # type: ignore[attr-defined]
    runtime.resumer._attempts._budget = budget  # type: ignore[attr-defined]
    # When an SQS batch comes
    answer = _handle(load_event("sqs-batch.json"), runtime)
    # Then every decision was resumed, paced alone; the cause is in one WARNING and a metric
    assert answer == {"batchItemFailures": []}
    assert gateway.calls
    warnings = [record for record in caplog.records if record.levelname == "WARNING"]
    assert [getattr(record, "ledger_error", None) for record in warnings] == ["AccessDeniedException"]
    from zego_resume.observability import metrics

    assert metrics.metric_set["RateLedgerUnavailable"]["Value"] == [1.0]


# --- riding out an outage: delays across receives, giving up by age, every cause said -----------


class FakeRedelivery:
    def __init__(self, causes: list[str] | None = None) -> None:
        self.asked: list[tuple[str, str, int]] = []
        self._causes = causes or []

    def delay(self, redeliveries: Sequence[Any], *, deadline: float) -> list[str]:
        self.asked += [(item.queue_arn, item.receipt_handle, item.seconds) for item in redeliveries]
        return self._causes


@pytest.mark.parametrize(("receive", "seconds"), [(1, 2), (2, 4), (3, 8), (7, 120), (400, 120)])
def test_a_decision_handed_back_comes_back_later_with_each_receive(receive: int, seconds: int) -> None:
    redelivery = FakeRedelivery()
    runtime = _runtime(FakeGateway(default=30003), max_receive_count=None)
    runtime = _with_redelivery(runtime, redelivery)
    answer = _handle(sqs_event(WIDE, receive_count=receive), runtime)
    assert _failed_ids(answer) == ["message-0"]
    ((queue_arn, receipt_handle, delay),) = redelivery.asked
    assert queue_arn.startswith("arn:aws:sqs:")
    assert receipt_handle
    assert delay == seconds  # 2, 4, 8, ... capped at REDELIVERY_MAX_DELAY_SECONDS (120)


def test_a_delay_that_cannot_be_set_still_hands_the_decision_back(caplog: pytest.LogCaptureFixture) -> None:
    redelivery = FakeRedelivery(causes=["AccessDenied: not allowed"])
    runtime = _with_redelivery(_runtime(FakeGateway(default=30003), max_receive_count=None), redelivery)
    answer = _handle(sqs_event(WIDE), runtime)
    assert _failed_ids(answer) == ["message-0"]
    assert any("could not be delayed" in record.getMessage() for record in caplog.records)


def test_a_decision_older_than_the_age_limit_is_dead_lettered_with_its_reason() -> None:
    # Given a decision sent 25 hours ago, still failing transiently, far from maxReceiveCount
    import time as clock

    dead_letters = FakeDeadLetters()
    runtime = _runtime(FakeGateway(default=30003), dead_letters=dead_letters, max_receive_count=1000)
    runtime = _with_max_age(runtime, 24 * 3600)
    sent = int((clock.time() - 25 * 3600) * 1000)
    answer = _handle(sqs_event(WIDE, receive_count=3, sent_timestamp=sent), runtime)
    # Then it is acknowledged, its ids dead-lettered with the transient reason
    assert _failed_ids(answer) == []
    assert {letter.attributes["ErrorCode"] for letter in dead_letters.sent} == {"30003"}


def test_a_young_decision_is_never_dead_lettered_for_a_transient_reason() -> None:
    import time as clock

    dead_letters = FakeDeadLetters()
    runtime = _with_max_age(
        _runtime(FakeGateway(default=30003), dead_letters=dead_letters, max_receive_count=None), 24 * 3600
    )
    sent = int((clock.time() - 23 * 3600) * 1000)
    answer = _handle(sqs_event(WIDE, receive_count=300, sent_timestamp=sent), runtime)
    assert _failed_ids(answer) == ["message-0"]
    assert dead_letters.sent == []


@pytest.mark.parametrize(
    ("kind", "gateway", "credentials", "code"),
    [
        ("ZEGO code", FakeGateway(default=30003), None, "30003"),
        (
            "ZEGO transport",
            FakeGateway(default=TransportError("ConnectionError", "refused")),
            None,
            "ConnectionError",
        ),
        (
            "secret",
            FakeGateway(),
            FakeCredentials(
                error=SecretError("SecretUnavailable", "ResourceNotFoundException: no such secret")
            ),
            "SecretUnavailable",
        ),
        (
            "region or credentials",
            FakeGateway(),
            FakeCredentials(error=SecretError("SecretUnavailable", "NoRegionError: no region configured")),
            "SecretUnavailable",
        ),
    ],
)
def test_the_cause_of_a_hand_back_is_logged_at_warning_on_the_first_receive(
    caplog: pytest.LogCaptureFixture,
    kind: str,
    gateway: FakeGateway,
    credentials: FakeCredentials | None,
    code: str,
) -> None:
    runtime = _runtime(gateway, credentials=credentials)
    answer = _handle(sqs_event(WIDE, receive_count=1), runtime)
    assert _failed_ids(answer) == ["message-0"]
    (warning,) = [r for r in caplog.records if r.getMessage() == "decision handed back for a retry"]
    assert warning.levelname == "WARNING"
    assert warning.error_code == code  # type: ignore[attr-defined]
    assert warning.error_message  # type: ignore[attr-defined]
    assert warning.correlation_id == "message-0"  # type: ignore[attr-defined]
    assert warning.receive_count == 1  # type: ignore[attr-defined]


def _with_redelivery(runtime: Runtime, redelivery: FakeRedelivery) -> Runtime:
    from dataclasses import replace

    return replace(runtime, redelivery=redelivery)


def _with_max_age(runtime: Runtime, seconds: int) -> Runtime:
    from dataclasses import replace

    return replace(runtime, settings=replace(runtime.settings, decision_max_age_seconds=seconds))
