"""The CLI against moto in server mode on loopback: the same HTTP calls it makes to AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zegosim.aws import MotoServer, Stack, client, create_stack

# Settings from the developer's machine that would steer boto3 away from the server.
_FOREIGN_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


@pytest.fixture(autouse=True)
def redrive_journal(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Redrive journals in a directory of the test's own, never in the developer's home."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "zego-resume" / "redrive"


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ pointing at the moto server (tests/conftest.py), as an operator's shell would
    point at AWS."""
    for name in _FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    environment = moto.environment()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return environment


@pytest.fixture
def stack(aws: dict[str, str]) -> Stack:
    """A fresh resume queue and DLQ (with redrive), as template.yaml makes them."""
    return create_stack(app_id=1, server_secret="x" * 32, environment=aws)


def put_dead_letter(
    stack: Stack, body: dict[str, Any] | str, error_code: str, error_reason: str | None = None
) -> str:
    """A message on the DLQ as the function leaves it (docs/contract.md, "Dead-letter message")."""
    attributes = {
        "ErrorCode": {"DataType": "String", "StringValue": error_code},
        "ErrorMessage": {"DataType": "String", "StringValue": f"{error_code} happened"},
        "Source": {"DataType": "String", "StringValue": "sqs"},
    }
    if error_reason is not None:
        attributes["ErrorReason"] = {"DataType": "String", "StringValue": error_reason}
    response = client("sqs").send_message(
        QueueUrl=stack.dead_letter_queue_url,
        MessageBody=body if isinstance(body, str) else json.dumps(body),
        MessageAttributes=attributes,
    )
    return str(response["MessageId"])


def visible_messages(queue_url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def hidden_messages(queue_url: str) -> int:
    attributes = client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])
