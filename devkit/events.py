"""Events as AWS delivers them: the canonical samples in events/, and SQS batches built record by
record exactly as Lambda's SQS event source mapping builds them (the one builder every suite, the
poller emulation, the demo and the benchmarks use)."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
REGION = "us-east-1"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:zego-stream-resume-resume-requests"
SENT_TIMESTAMP = 1_764_410_000_000  # 2025-11-29T09:53:20Z, the samples' era
RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
)


def load_event(name: str) -> Any:
    """A canonical event from events/, by file name."""
    return json.loads((EVENTS / name).read_text())


def sqs_record(
    body: str | Mapping[str, Any],
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    sent_timestamp: int | None = None,
    receipt_handle: str | None = None,
    queue_arn: str = QUEUE_ARN,
    message_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One record of Lambda's SQS event, for a message with this body (a dict is sent as JSON).
    Sent now unless `sent_timestamp` (ms) says otherwise: the function gives up on a decision
    by its age on the queue."""
    if sent_timestamp is None:
        sent_timestamp = int(time.time() * 1000)
    text = body if isinstance(body, str) else json.dumps(body)
    message_id = message_id or str(uuid.uuid4())
    return {
        "messageId": message_id,
        "receiptHandle": receipt_handle or f"AQEB{message_id}",
        "body": text,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(sent_timestamp),
            "SenderId": "AIDAEXAMPLESENDER",
            "ApproximateFirstReceiveTimestamp": str(sent_timestamp + 1),
        },
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (message_attributes or {}).items()
        },
        "md5OfBody": hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def sqs_event(
    *bodies: str | Mapping[str, Any],
    receive_count: int = 1,
    sent_timestamp: int | None = None,
    message_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An SQS batch as Lambda delivers it, one record per body; message ids default to
    message-0, message-1, ... so that a test can name them."""
    ids = list(message_ids) if message_ids is not None else [f"message-{n}" for n in range(len(bodies))]
    return {
        "Records": [
            sqs_record(
                body, message_id=message_id, receive_count=receive_count, sent_timestamp=sent_timestamp
            )
            for body, message_id in zip(bodies, ids, strict=True)
        ]
    }


def sqs_record_from_message(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, built from a ReceiveMessage result as AWS builds it."""
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {key: attributes[key] for key in RECORD_ATTRIBUTES if key in attributes},
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
        "awsRegion": queue_arn.split(":")[3],
    }
