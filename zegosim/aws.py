"""AWS on loopback: moto in server mode (real HTTP), and the resources the function needs.

The function reaches these through the standard variables (AWS_ENDPOINT_URL, AWS_REGION, ...),
exactly as it reaches AWS: nothing in the function knows it is talking to moto.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from resumectl.aws import region_from

REGION = "us-east-1"
# moto accepts any credentials; these only keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
SOURCE_QUEUE_MAX_MESSAGE_BYTES = 262_144  # SQS's classic limit for producers
# The DLQ takes larger messages than the source queue, so that a body of the source's maximum
# size still fits with the error attributes added to it.
DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES = 1_048_576


_atomic_lock = threading.Lock()


def make_dynamodb_writes_atomic() -> None:
    """DynamoDB applies a conditional write to an item atomically, and the values it returns
    (ReturnValues=UPDATED_OLD, ALL_OLD on a failed condition) are the ones that write saw. moto's
    threaded server does neither: it checks and writes without a lock, and reads the old item for
    ReturnValues before the write, in its request handler. Two reservations of the fleet's rate
    ledger could then both be told they start at the same value. The stand-in is made as strict
    as the real thing: every item write, from reading the request to the answer, holds one lock.
    Idempotent."""
    from moto.dynamodb.responses import DynamoHandler

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoHandler, name)
        if getattr(method, "_atomic", False):
            continue

        def atomic(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _atomic_lock:
                return _method(self, *args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(DynamoHandler, name, atomic)


class MotoServer:
    """moto's threaded server on 127.0.0.1 and a free port (or `port`), its DynamoDB writes
    atomic."""

    def __init__(self, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        make_dynamodb_writes_atomic()

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()

    def environment(self) -> dict[str, str]:
        """The variables that point boto3 (and so the function) at this server."""
        return {
            **LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(service: str, environment: Mapping[str, str] | None = None) -> Any:
    """A boto3 client for `service`, configured from `environment` (default: os.environ)."""
    import boto3

    env = os.environ if environment is None else environment
    return boto3.session.Session(
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        # The CLI's rule (resumectl.aws.REGION_RULE); moto's region when neither is set.
        region_name=region_from(env) or REGION,
    ).client(service, endpoint_url=env.get("AWS_ENDPOINT_URL") or None)


@dataclass(frozen=True)
class Stack:
    """The resources one deployment of the function uses."""

    secret_id: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    max_receive_count: int

    def function_environment(self, zego_api_base_url: str, **extra: str) -> dict[str, str]:
        """The function's environment variables (docs/contract.md) for this stack."""
        return {
            "ZEGO_SECRET_ID": self.secret_id,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
            "ZEGO_API_BASE_URL": zego_api_base_url,
            "MAX_RECEIVE_COUNT": str(self.max_receive_count),
            **extra,
        }


def create_stack(
    *,
    app_id: int,
    server_secret: str,
    environment: Mapping[str, str] | None = None,
    name: str | None = None,
    max_receive_count: int = 5,
    visibility_timeout: int = 30,
) -> Stack:
    """The secret, the resume queue and its DLQ (with redrive), as template.yaml makes them."""
    name = name or f"zego-resume-{uuid.uuid4().hex[:8]}"
    sqs = client("sqs", environment)
    secrets = client("secretsmanager", environment)
    secret = secrets.create_secret(
        Name=f"{name}/zego", SecretString=json.dumps({"AppId": app_id, "ServerSecret": server_secret})
    )
    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq",
        Attributes={
            "MessageRetentionPeriod": str(14 * 24 * 3600),
            "MaximumMessageSize": str(DEAD_LETTER_QUEUE_MAX_MESSAGE_BYTES),
        },
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "MaximumMessageSize": str(SOURCE_QUEUE_MAX_MESSAGE_BYTES),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
            ),
        },
    )["QueueUrl"]
    return Stack(
        secret_id=secret["ARN"],
        queue_url=queue_url,
        queue_arn=_queue_arn(sqs, queue_url),
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        max_receive_count=max_receive_count,
    )


def create_rate_ledger(name: str, environment: Mapping[str, str] | None = None) -> str:
    """The fleet's rate ledger table, as template.yaml makes it (on demand, key `pk` String)."""
    dynamodb = client("dynamodb", environment)
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def drain(queue_url: str, environment: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Receive and delete every message of a queue; each with its body and String attributes."""
    sqs = client("sqs", environment)
    drained: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return drained
        for message in messages:
            drained.append(
                {
                    "body": message["Body"],
                    "attributes": {
                        key: value.get("StringValue")
                        for key, value in message.get("MessageAttributes", {}).items()
                    },
                    "messageId": message["MessageId"],
                }
            )
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def dead_lettered_stream_ids(letters: list[dict[str, Any]]) -> dict[str, str]:
    """stream id -> ErrorCode, for dead letters (as `drain` returns them) that hold the failed
    part of a valid request. An InvalidRequest letter keeps its body verbatim: whatever ids it
    names were never accepted as a decision, so they account for nothing."""
    found: dict[str, str] = {}
    for letter in letters:
        code = letter["attributes"].get("ErrorCode", "")
        if code == "InvalidRequest":
            continue
        try:
            body = json.loads(letter["body"])
        except ValueError:
            continue
        if isinstance(body, dict) and isinstance(body.get("streamIds"), list):
            for stream_id in body["streamIds"]:
                found[stream_id] = code
    return found
