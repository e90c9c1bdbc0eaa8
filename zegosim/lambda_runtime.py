"""What Lambda does around the function and moto cannot: a context whose remaining time counts
down, and the SQS event source mapping (receive, invoke, delete, honour batchItemFailures).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .aws import REGION, client

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the function and Powertools read."""

    timeout_seconds: float = 60.0
    function_name: str = "zego-resume-streams"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/zego-resume-streams"
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, built from a ReceiveMessage result as AWS builds it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            key: attributes[key]
            for key in (
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "ApproximateFirstReceiveTimestamp",
            )
            if key in attributes
        },
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@dataclass
class PollStats:
    invocations: int = 0
    received: int = 0
    deleted: int = 0
    reported_failed: int = 0
    whole_batch_failures: int = 0


class SqsPoller:
    """Lambda's SQS event source mapping, one poller (one concurrent execution) of it."""

    def __init__(
        self,
        handler: Handler,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int = 10,
        batching_window: float = 0.0,
        function_timeout: float = 60.0,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self._handler = handler
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._batching_window = batching_window
        self._function_timeout = function_timeout
        self._sqs = client("sqs", environment)
        self.stats = PollStats()

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch (gathering for up to the batching window), invoke, settle it.

        Returns the number of messages received.
        """
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        self.stats.received += len(messages)
        event = {"Records": [sqs_record(message, self._queue_arn) for message in messages]}
        self.stats.invocations += 1
        try:
            answer = self._handler(event, LambdaContext(timeout_seconds=self._function_timeout))
        except Exception:
            # A raised error fails the whole batch: every message waits out its visibility timeout.
            self.stats.whole_batch_failures += 1
            return len(messages)
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        self.stats.reported_failed += len(failed)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )
        self.stats.deleted += len(done)
        return len(messages)

    def run_until_empty(self, *, idle_polls: int = 2, max_seconds: float = 120.0) -> PollStats:
        """Poll until the queue has been empty `idle_polls` times in a row (or time is up)."""
        idle = 0
        stop_at = time.monotonic() + max_seconds
        while idle < idle_polls and time.monotonic() < stop_at:
            idle = idle + 1 if self.poll_once(wait_seconds=1) == 0 else 0
        return self.stats

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self._batching_window
        while len(messages) < self._batch_size:
            got = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, self._batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=wait_seconds if not messages else 0,
            ).get("Messages", [])
            messages.extend(got)
            if not got and time.monotonic() >= window_ends:
                break
            if not got:
                time.sleep(0.05)
        return messages
