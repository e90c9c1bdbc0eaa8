"""Adapter: delays the next delivery of SQS messages handed back for a transient reason, with
ChangeMessageVisibilityBatch on their receipt handles, so a decision waiting out a ZEGO outage
comes back later and later instead of burning its receives.

It never raises: a delay that could not be set leaves the message to the queue's own visibility
timeout (it is still handed back, nothing is lost), and the caller logs the causes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from zego_resume.adapters.aws_clients import aws_client
from zego_resume.ports import Redelivery

MAX_BATCH_ENTRIES = 10  # SQS ChangeMessageVisibilityBatch limit
CONNECT_TIMEOUT_SECONDS = 0.5
READ_TIMEOUT_SECONDS = 1.0
REQUEST_SECONDS = CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


def _sqs_client() -> Any:
    return aws_client(
        "sqs", connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS, attempts=1
    )


class SqsRedelivery:
    def __init__(
        self,
        *,
        client_factory: Callable[[], Any] = _sqs_client,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_factory = client_factory
        self._monotonic = monotonic
        self._client: Any = None
        self._queue_urls: dict[str, str] = {}  # queue ARN -> URL, for the environment's life

    def delay(self, redeliveries: Sequence[Redelivery], *, deadline: float) -> list[str]:
        """Set each message's visibility to its delay before `deadline` (time.monotonic()).
        Returns the causes of the delays that could not be set (empty: all were)."""
        causes: list[str] = []
        by_queue: dict[str, list[Redelivery]] = {}
        for item in redeliveries:
            by_queue.setdefault(item.queue_arn, []).append(item)
        for queue_arn, items in by_queue.items():
            for start in range(0, len(items), MAX_BATCH_ENTRIES):
                batch = items[start : start + MAX_BATCH_ENTRIES]
                if deadline - self._monotonic() < REQUEST_SECONDS:
                    causes += ["Timeout: no time left to delay the redelivery"] * len(batch)
                    continue
                causes += self._delay_batch(queue_arn, batch)
        return causes

    def _delay_batch(self, queue_arn: str, batch: Sequence[Redelivery]) -> list[str]:
        try:
            if self._client is None:
                self._client = self._client_factory()
            answer = self._client.change_message_visibility_batch(
                QueueUrl=self._queue_url(queue_arn),
                Entries=[
                    {
                        "Id": str(index),
                        "ReceiptHandle": item.receipt_handle,
                        "VisibilityTimeout": item.seconds,
                    }
                    for index, item in enumerate(batch)
                ],
            )
        except Exception as error:  # botocore raises many types; each means "not delayed"
            return [_describe(error)] * len(batch)
        return [f"{failed.get('Code')}: {failed.get('Message', '')}" for failed in answer.get("Failed", [])]

    def _queue_url(self, queue_arn: str) -> str:
        url = self._queue_urls.get(queue_arn)
        if url is None:
            # arn:aws:sqs:<region>:<account>:<name>
            _arn, _partition, _service, _region, account, name = queue_arn.split(":", 5)
            answer = self._client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            url = self._queue_urls[queue_arn] = str(answer["QueueUrl"])
        return url


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        details = response.get("Error", {})
        return f"{details.get('Code', type(error).__name__)}: {details.get('Message', '')}".strip()
    return type(error).__name__
