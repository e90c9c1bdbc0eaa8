"""Fixtures shared by the suites that run the real handler over loopback HTTP: moto in server
mode for SQS and Secrets Manager, and the ZEGO emulator."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import settings

from zego_resume.observability import metrics
from zego_resume.runtime import reset_runtime
from zegosim.aws import MotoServer, Stack, client, create_stack, drain
from zegosim.zego import ZegoEmulator

APP_ID = 1234567890

# Property-based tests run the same examples every time (a CI run never flakes on a new draw) and
# keep no database; HYPOTHESIS_PROFILE=explore draws new examples, ten times as many.
settings.register_profile("repeatable", max_examples=150, derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=1500, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Local:
    """One deployment on loopback: its stack, the ZEGO emulator, and the function's settings."""

    stack: Stack
    zego: ZegoEmulator
    server_secret: str
    environment: dict[str, str]

    def dead_letters(self) -> list[dict[str, Any]]:
        return drain(self.stack.dead_letter_queue_url, self.environment)

    def rotate_secret(self) -> str:
        """A new ServerSecret, at ZEGO and in Secrets Manager alike (what a rotation does)."""
        new_secret = secrets.token_hex(16)
        self.zego.rotate_secret(new_secret)
        client("secretsmanager", self.environment).put_secret_value(
            SecretId=self.stack.secret_id,
            SecretString=json.dumps({"AppId": APP_ID, "ServerSecret": new_secret}),
        )
        self.server_secret = new_secret
        return new_secret


@pytest.fixture
def local(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    server_secret = secrets.token_hex(16)
    environment = moto.environment()
    stack = create_stack(app_id=APP_ID, server_secret=server_secret, environment=environment)
    with ZegoEmulator(APP_ID, server_secret) as zego:
        environment.update(stack.function_environment(zego.base_url, ZEGO_READ_TIMEOUT_SECONDS="1"))
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        reset_runtime()
        metrics.clear_metrics()
        yield Local(stack=stack, zego=zego, server_secret=server_secret, environment=environment)
    reset_runtime()
