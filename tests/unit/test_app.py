"""The Lambda entry point: Powertools decorators around handle_event, with a pre-set runtime."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

import app
from devkit.events import load_event
from zego_resume.dispatch import ResumeIncomplete, handle_event
from zego_resume.local_context import LocalContext
from zego_resume.observability import logger
from zego_resume.runtime import install_runtime

from .fakes import (
    FakeGateway,
    fake_runtime,
)


def _metric_blobs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def _metric_names(blob: dict[str, Any]) -> set[str]:
    return {
        metric["Name"] for directive in blob["_aws"]["CloudWatchMetrics"] for metric in directive["Metrics"]
    }


def _total(value: float | list[float]) -> float:
    return sum(value) if isinstance(value, list) else value


def test_lambda_handler_answers_like_handle_event(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a warm execution environment whose runtime is already built
    event = load_event("sqs-batch.json")
    gateway = FakeGateway(by_stream={"stream-c": 30003}, default=0)
    install_runtime(fake_runtime(gateway))
    # When Lambda calls the entry point
    answer = app.lambda_handler(event, LocalContext())
    capsys.readouterr()
    # Then it answers exactly what the dispatcher answers for the same event
    expected = handle_event(event, LocalContext(), fake_runtime(FakeGateway(by_stream={"stream-c": 30003})))
    assert answer == expected
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}


def test_lambda_handler_prints_the_invocation_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    install_runtime(fake_runtime(FakeGateway(default=0)))
    app.lambda_handler(load_event("sqs-batch.json"), LocalContext())
    blobs = [blob for blob in _metric_blobs(capsys.readouterr().out) if "ZegoCalls" in _metric_names(blob)]
    assert len(blobs) == 1
    assert _total(blobs[0]["ZegoCalls"]) == 2  # two messages with different sequences: two calls
    assert _total(blobs[0]["StreamIdsResumed"]) == 3


def test_lambda_handler_lets_an_incomplete_async_resume_raise() -> None:
    install_runtime(fake_runtime(FakeGateway(default=30003)))
    with pytest.raises(ResumeIncomplete):
        app.lambda_handler(load_event("eventbridge-event.json"), LocalContext())


@pytest.mark.parametrize("context", [None, object()], ids=["none", "bare-object"])
def test_lambda_handler_works_without_a_lambda_context(context: object) -> None:
    # Given a caller outside Lambda that passes no usable context
    gateway = FakeGateway(default=0)
    install_runtime(fake_runtime(gateway))
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    logs = io.StringIO()
    previous = handler.setStream(logs)
    # When it calls the entry point with a direct request
    try:
        answer = app.lambda_handler(load_event("direct-request.json"), context)  # type: ignore[arg-type]
    finally:
        handler.setStream(previous)
    # Then the request is handled as in Lambda, and the logs carry a request id all the same
    assert answer["status"] == "resumed"
    assert len(gateway.calls) == 1
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert lines
    assert all(line.get("function_request_id") for line in lines)
