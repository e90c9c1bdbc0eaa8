"""Delaying the next delivery of messages handed back, against moto server's SQS over HTTP."""

from __future__ import annotations

import time

import pytest

from zego_resume.adapters.redelivery import SqsRedelivery
from zego_resume.ports import Redelivery
from zegosim.aws import client

from .conftest import Local

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]


def test_a_delayed_message_stays_invisible_for_its_delay_then_comes_back(local: Local) -> None:
    # Given a message received once (visible again after the queue's timeout)
    sqs = client("sqs", local.environment)
    sqs.send_message(QueueUrl=local.stack.queue_url, MessageBody='{"streamIds": ["a"]}')
    (message,) = sqs.receive_message(QueueUrl=local.stack.queue_url, VisibilityTimeout=0)["Messages"]
    # When its next delivery is delayed by 2 s through the queue's ARN
    causes = SqsRedelivery().delay(
        [Redelivery(local.stack.queue_arn, message["ReceiptHandle"], 2)], deadline=time.monotonic() + 10
    )
    # Then nothing failed; it is not received at once, and is after the delay
    assert causes == []
    assert "Messages" not in sqs.receive_message(QueueUrl=local.stack.queue_url)
    time.sleep(2.2)
    assert len(sqs.receive_message(QueueUrl=local.stack.queue_url)["Messages"]) == 1


def test_a_delay_that_fails_says_why_and_never_raises(local: Local) -> None:
    causes = SqsRedelivery().delay(
        [Redelivery(local.stack.queue_arn, "not-a-receipt-handle", 5)], deadline=time.monotonic() + 10
    )
    assert len(causes) == 1
    assert causes[0]
