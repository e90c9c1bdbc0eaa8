"""Helpers for the integration suite: canonical events, SQS batches and Lambda contexts, from the
shared dev tooling. The fixtures (`moto`, `local`) live in tests/conftest.py."""

from __future__ import annotations

from devkit.events import load_event, sqs_event
from tests.conftest import Local
from zego_resume.local_context import LocalContext

__all__ = ["Local", "context", "load_event", "sqs_event"]


def context(timeout_seconds: float = 30.0) -> LocalContext:
    return LocalContext(timeout_seconds=timeout_seconds)
