"""System suites: the real handler behind the Lambda SQS poller emulation, moto server and the
ZEGO emulator, all on loopback. The fixtures (`moto`, `local`) live in tests/conftest.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_ID, Local
from zegosim.aws import client
from zegosim.zego import ZegoEmulator


def send_bodies(local: Local, bodies: Iterable[str | dict[str, Any]]) -> int:
    """Put every body on the resume queue, ten per SendMessageBatch."""
    sqs = client("sqs", local.environment)
    pending = [body if isinstance(body, str) else json.dumps(body) for body in bodies]
    for start in range(0, len(pending), 10):
        answer = sqs.send_message_batch(
            QueueUrl=local.stack.queue_url,
            Entries=[
                {"Id": str(index), "MessageBody": body}
                for index, body in enumerate(pending[start : start + 10])
            ],
        )
        assert not answer.get("Failed"), answer.get("Failed")
    return len(pending)


def set_visibility_timeout(local: Local, seconds: int) -> None:
    client("sqs", local.environment).set_queue_attributes(
        QueueUrl=local.stack.queue_url, Attributes={"VisibilityTimeout": str(seconds)}
    )


@contextmanager
def own_emulator(
    local: Local, monkeypatch: pytest.MonkeyPatch, *, calls_per_second: int, **options: Any
) -> Iterator[ZegoEmulator]:
    """A ZEGO emulator with its own rate limit, and the function pointed at it with that budget."""
    from zego_resume.runtime import reset_runtime

    with ZegoEmulator(APP_ID, local.server_secret, rate_limit=calls_per_second, **options) as zego:
        monkeypatch.setenv("ZEGO_API_BASE_URL", zego.base_url)
        monkeypatch.setenv("ZEGO_FLEET_CALLS_PER_SECOND", str(calls_per_second))
        monkeypatch.setenv("ZEGO_MAX_CALLS_PER_SECOND", str(calls_per_second))
        reset_runtime()
        yield zego
    reset_runtime()


class Environments:
    """Execution environments of the function, each a process of its own polling one queue
    (zegosim.lambda_runtime), as Lambda runs concurrent instances."""

    def __init__(
        self,
        local: Local,
        count: int,
        environment: dict[str, str],
        directory: Path,
        *,
        function_timeout: float = 30,
        max_seconds: float = 200,
        idle_polls: int = 2,
    ) -> None:
        self._directory = directory
        self._count = count
        self.max_seconds = max_seconds
        self.processes = [
            subprocess.Popen(  # noqa: S603 - our own module
                [
                    sys.executable,
                    "-m",
                    "zegosim.lambda_runtime",
                    "--queue-url",
                    local.stack.queue_url,
                    "--queue-arn",
                    local.stack.queue_arn,
                    "--function-timeout",
                    str(function_timeout),
                    "--max-seconds",
                    str(max_seconds),
                    "--idle-polls",
                    str(idle_polls),
                    "--stats",
                    str(directory / f"env-{number}.json"),
                ],
                env={**os.environ, **environment},
                stdout=(directory / f"env-{number}.out").open("w"),
                stderr=(directory / f"env-{number}.err").open("w"),
            )
            for number in range(count)
        ]

    def wait(self) -> list[dict[str, Any]]:
        """Wait for every environment to finish (each gives up, saying what is left, within its
        max_seconds); their PollStats. Fails with their error output if one failed."""
        for process in self.processes:
            process.wait(timeout=self.max_seconds + 60)
        errors = [(self._directory / f"env-{n}.err").read_text()[-2000:] for n in range(self._count)]
        assert [process.returncode for process in self.processes] == [0] * self._count, errors
        return [json.loads((self._directory / f"env-{n}.json").read_text()) for n in range(self._count)]

    def log_lines(self) -> list[dict[str, Any]]:
        """Every JSON line the environments' functions printed (logs and EMF metrics)."""
        lines = []
        for n in range(self._count):
            for line in (self._directory / f"env-{n}.out").read_text().splitlines():
                if line.startswith("{"):
                    lines.append(json.loads(line))
        return lines
