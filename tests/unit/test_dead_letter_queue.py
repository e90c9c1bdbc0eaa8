"""The dead-letter sender over a fake SQS client: batches, attributes, and failures reported."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from zego_resume.adapters.dead_letter_queue import BATCH_SECONDS, DeadLetterQueue
from zego_resume.ports import DeadLetter

FAR = math.inf  # no deadline in sight
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/zego-resume-dlq"
SQS_MAX_BATCH_ENTRIES = 10  # SendMessageBatch limit
SQS_CLASSIC_MAX_PAYLOAD = 256 * 1024


class FakeSqsClient:
    """boto3's send_message_batch: accepts entries unless their body is in `refuse`."""

    def __init__(self, *, refuse: set[str] | None = None, error: Exception | None = None) -> None:
        self._refuse = refuse or set()
        self._error = error
        self.batches: list[dict[str, Any]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append({"QueueUrl": QueueUrl, "Entries": Entries})
        if self._error is not None:
            raise self._error
        ok = [entry for entry in Entries if entry["MessageBody"] not in self._refuse]
        bad = [entry for entry in Entries if entry["MessageBody"] in self._refuse]
        response: dict[str, Any] = {
            "Successful": [{"Id": entry["Id"], "MessageId": f"m-{entry['Id']}"} for entry in ok]
        }
        if bad:
            response["Failed"] = [
                {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"} for entry in bad
            ]
        return response


class CountingFactory:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.built = 0

    def __call__(self) -> Any:
        self.built += 1
        return self.client


def _letters(count: int, **attributes: str) -> list[DeadLetter]:
    return [DeadLetter(body=f'{{"n": {index}}}', attributes=dict(attributes)) for index in range(count)]


def _queue(client: Any) -> tuple[DeadLetterQueue, CountingFactory]:
    factory = CountingFactory(client)
    return DeadLetterQueue(QUEUE_URL, client_factory=factory), factory


def test_letters_go_out_in_batches_of_at_most_ten() -> None:
    # Given 23 letters
    client = FakeSqsClient()
    queue, _ = _queue(client)
    letters = _letters(23, ErrorCode="30006")
    # When they are sent
    result = queue.send(letters, deadline=FAR)
    # Then every one is accepted, in batches of <= 10 to the DLQ, each body exactly once
    assert result == [True] * 23
    assert all(len(batch["Entries"]) <= SQS_MAX_BATCH_ENTRIES for batch in client.batches)
    assert {batch["QueueUrl"] for batch in client.batches} == {QUEUE_URL}
    bodies = [entry["MessageBody"] for batch in client.batches for entry in batch["Entries"]]
    assert sorted(bodies) == sorted(letter.body for letter in letters)


def test_attributes_are_string_attributes_and_empty_ones_are_omitted() -> None:
    client = FakeSqsClient()
    queue, _ = _queue(client)
    queue.send(
        [DeadLetter(body="{}", attributes={"ErrorCode": "30006", "ZegoRequestId": "", "Source": "sqs"})],
        deadline=FAR,
    )
    (entry,) = client.batches[0]["Entries"]
    assert entry["MessageAttributes"] == {
        "ErrorCode": {"DataType": "String", "StringValue": "30006"},
        "Source": {"DataType": "String", "StringValue": "sqs"},
    }


def test_entries_sqs_refuses_are_reported_false_and_the_others_true() -> None:
    letters = _letters(12)
    refused = {letters[3].body, letters[11].body}
    queue, _ = _queue(FakeSqsClient(refuse=refused))
    result = queue.send(letters, deadline=FAR)
    assert result == [letter.body not in refused for letter in letters]


def test_a_client_exception_reports_every_letter_false_and_does_not_raise() -> None:
    queue, _ = _queue(FakeSqsClient(error=RuntimeError("AWS.SimpleQueueService.NonExistentQueue")))
    assert queue.send(_letters(15), deadline=FAR) == [False] * 15


def test_a_client_that_cannot_be_built_reports_every_letter_false() -> None:
    def broken_factory() -> Any:
        raise RuntimeError("NoRegionError")

    queue = DeadLetterQueue(QUEUE_URL, client_factory=broken_factory)
    assert queue.send(_letters(3), deadline=FAR) == [False, False, False]


def test_the_client_is_built_lazily_and_only_once() -> None:
    queue, factory = _queue(FakeSqsClient())
    assert factory.built == 0  # constructing the queue costs nothing
    queue.send(_letters(1), deadline=FAR)
    queue.send(_letters(11), deadline=FAR)
    assert factory.built == 1


def test_sending_nothing_builds_no_client() -> None:
    queue, factory = _queue(FakeSqsClient())
    assert queue.send([], deadline=FAR) == []
    assert factory.built == 0


def test_large_letters_are_split_to_stay_under_sqs_batch_payload() -> None:
    client = FakeSqsClient()
    queue, _ = _queue(client)
    letters = [
        DeadLetter(body=f"{index}" + "x" * 100_000, attributes={"ErrorCode": "X"}) for index in range(5)
    ]
    assert queue.send(letters, deadline=FAR) == [True] * 5
    for batch in client.batches:
        payload = sum(len(entry["MessageBody"]) for entry in batch["Entries"])
        assert payload <= SQS_CLASSIC_MAX_PAYLOAD


@pytest.mark.parametrize("failing_batch", [0, 1])
def test_one_failed_batch_does_not_stop_the_others(failing_batch: int) -> None:
    class OneBadBatch(FakeSqsClient):
        def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            if len(self.batches) == failing_batch:
                self.batches.append({"QueueUrl": QueueUrl, "Entries": Entries})
                raise RuntimeError("throttled")
            return super().send_message_batch(QueueUrl=QueueUrl, Entries=Entries)

    queue, _ = _queue(OneBadBatch())
    result = queue.send(_letters(15), deadline=FAR)
    expected_failed = range(0, 10) if failing_batch == 0 else range(10, 15)
    assert result == [index not in expected_failed for index in range(15)]


def test_no_batch_is_sent_without_the_time_one_request_may_take() -> None:
    # Given 12 letters and less time left than one request may take
    client = FakeSqsClient()
    queue, _ = _queue(client)
    # When they are sent
    sent = queue.send(_letters(12), deadline=time.monotonic() + BATCH_SECONDS / 2)
    # Then nothing went out and every letter is reported unsent, so its message goes back
    assert client.batches == []
    assert sent == [False] * 12


def test_a_send_that_fails_is_logged_at_error_with_sqss_code_and_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given SQS refusing the request itself (the DLQ is gone, say)
    error = RuntimeError("refused")
    error.response = {  # type: ignore[attr-defined]
        "Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "The queue does not exist."}
    }
    queue, _ = _queue(FakeSqsClient(error=error))
    # When letters are sent
    queue.send(_letters(2), deadline=FAR)
    # Then an ERROR names SQS's error code and message
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.error == "AWS.SimpleQueueService.NonExistentQueue"  # type: ignore[attr-defined]
    assert record.error_message == "The queue does not exist."  # type: ignore[attr-defined]


def test_an_entry_sqs_refuses_is_logged_at_error_with_its_code(caplog: pytest.LogCaptureFixture) -> None:
    letters = _letters(2)
    queue, _ = _queue(FakeSqsClient(refuse={letters[0].body}))
    queue.send(letters, deadline=FAR)
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.error == "InternalError"  # type: ignore[attr-defined]
