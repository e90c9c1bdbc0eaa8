"""Adapter: sends what failed for good to the dead-letter queue, and says which sends failed.

It never raises: a letter that could not be sent is reported back, and the caller hands its
message back to the source (batchItemFailures, or an exception for async invocations) so that
nothing is dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from zego_resume.adapters.aws_clients import aws_client, error_code
from zego_resume.ports import DeadLetter

MAX_BATCH_ENTRIES = 10  # SQS SendMessageBatch limit
MAX_BATCH_BYTES = 256 * 1024  # keep a batch under the classic payload limit; bigger letters go alone
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
# A batch is sent only while this much time is left: one request, no retry, fits in it.
BATCH_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS

logger = logging.getLogger(__name__)


def _sqs_client() -> Any:
    # Built on the first dead letter only: most invocations never need it, and a client costs
    # tens of milliseconds. Short timeouts and one attempt: dead letters are sent within the
    # invocation's safety margin, and a send that fails hands its message back, so nothing is lost.
    return aws_client(
        "sqs", connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS, attempts=1
    )


class DeadLetterQueue:
    """DeadLetterSink over SQS SendMessageBatch."""

    def __init__(
        self,
        queue_url: str,
        *,
        client_factory: Callable[[], Any] = _sqs_client,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue_url = queue_url
        self._client_factory = client_factory
        self._monotonic = monotonic
        self._client: Any = None

    def send(self, letters: Sequence[DeadLetter], *, deadline: float) -> list[bool]:
        """Send every letter before `deadline` (time.monotonic()); the result says, letter by
        letter, whether SQS accepted it.

        Never raises. A False means: do not acknowledge that letter's source message.
        """
        sent = [False] * len(letters)
        for batch in _batches(letters):
            if deadline - self._monotonic() < BATCH_SECONDS:
                logger.error("no time left to send dead letters", extra={"unsent": len(batch)})
                continue
            try:
                accepted = self._send_batch([(index, letters[index]) for index in batch])
            except Exception as error:  # botocore raises many types; each means "not sent"
                logger.error(
                    "dead-letter send failed",
                    extra={
                        "error": error_code(error) or type(error).__name__,
                        "error_message": _error_message(error),
                    },
                )
                continue
            for index in accepted:
                sent[index] = True
        return sent

    def _send_batch(self, batch: list[tuple[int, DeadLetter]]) -> list[int]:
        if self._client is None:
            self._client = self._client_factory()
        response = self._client.send_message_batch(
            QueueUrl=self._queue_url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": letter.body,
                    "MessageAttributes": {
                        name: {"DataType": "String", "StringValue": value}
                        for name, value in letter.attributes.items()
                        if value
                    },
                }
                for index, letter in batch
            ],
        )
        for failed in response.get("Failed", []):
            logger.error(
                "dead-letter send refused",
                extra={
                    "error": failed.get("Code"),
                    "error_message": failed.get("Message"),
                    "sender_fault": failed.get("SenderFault"),
                },
            )
        return [int(entry["Id"]) for entry in response.get("Successful", [])]


def _batches(letters: Sequence[DeadLetter]) -> list[list[int]]:
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, letter in enumerate(letters):
        letter_size = letter.size()
        if current and (len(current) == MAX_BATCH_ENTRIES or size + letter_size > MAX_BATCH_BYTES):
            batches.append(current)
            current, size = [], 0
        current.append(index)
        size += letter_size
    if current:
        batches.append(current)
    return batches


def _error_message(error: Exception) -> str:
    # botocore's messages name the queue and the operation, never a message body or a secret.
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Message", ""))[:500]
    return str(error)[:500]
