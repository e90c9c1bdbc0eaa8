"""Helpers for the integration suite: canonical events, SQS batches and Lambda contexts.
The fixtures (`moto`, `local`) live in tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import Local
from zegosim.lambda_runtime import LambdaContext

__all__ = ["Local", "context", "load_event", "sqs_event"]

EVENTS = Path(__file__).parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def sqs_event(*bodies: str | dict[str, Any], receive_count: int = 1) -> dict[str, Any]:
    """An SQS batch as Lambda delivers it, one record per body."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"handle-{index}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1764410000000",
                    "SenderId": "AIDASENDER",
                    "ApproximateFirstReceiveTimestamp": "1764410000001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:zego-resume",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def context(timeout_seconds: float = 30.0) -> LambdaContext:
    return LambdaContext(timeout_seconds=timeout_seconds)
