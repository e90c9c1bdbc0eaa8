"""In-memory fakes of the ports (ports.py) and of the few outside objects the adapters touch.

Small classes rather than mocks: each behaves like the real thing within what the tests need,
and records what it was asked so that a test can check the conversation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zego_resume.dead_letters import DeadLetter
from zego_resume.ports import SecretError, ZegoAnswer, ZegoCredentials

EVENTS = Path(__file__).parents[2] / "events"

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
ROTATED_SECRET = "fedcba9876543210fedcba9876543210"


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


class FakeClock:
    """A clock the test (or a fake sleep) moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeSleep:
    """Records every delay; moves the clock by it when given one."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.delays: list[float] = []
        self._clock = clock

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)


@dataclass(frozen=True)
class GatewayCall:
    credentials: ZegoCredentials
    stream_ids: tuple[str, ...]
    sequence: int
    time_left: float


Answer = int | BaseException


class FakeGateway:
    """ZegoGateway answering from a script.

    `script` is consumed call by call (a code, or an exception to raise); once it is empty, a call
    carrying a stream id named in `by_stream` answers that id's code, any other call `default`.
    """

    def __init__(
        self,
        script: Iterable[Answer] = (),
        *,
        by_stream: dict[str, Answer] | None = None,
        default: Answer = 0,
        on_call: Callable[[], None] | None = None,
    ) -> None:
        self._script = list(script)
        self._by_stream = by_stream or {}
        self._default = default
        self._on_call = on_call
        self._lock = threading.Lock()
        self.calls: list[GatewayCall] = []

    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        time_left: float,
    ) -> ZegoAnswer:
        with self._lock:
            self.calls.append(GatewayCall(credentials, tuple(stream_ids), sequence, time_left))
            number = len(self.calls)
            if self._script:
                answer = self._script.pop(0)
            else:
                answer = next(
                    (self._by_stream[sid] for sid in stream_ids if sid in self._by_stream), self._default
                )
        if self._on_call is not None:
            self._on_call()
        if isinstance(answer, BaseException):
            raise answer
        return ZegoAnswer(code=answer, message=f"answer {answer}", request_id=f"zego-req-{number}")


class FakeCredentials:
    """CredentialSource over a list of secrets: `refresh` moves to the next one."""

    def __init__(
        self,
        *,
        app_id: int = APP_ID,
        secrets: Sequence[str] = (SECRET, ROTATED_SECRET),
        error: SecretError | None = None,
        refresh_error: SecretError | None = None,
    ) -> None:
        self._app_id = app_id
        self._secrets = list(secrets)
        self._index = 0
        self._error = error
        self._refresh_error = refresh_error
        self.refreshes = 0

    def current(self) -> ZegoCredentials:
        if self._error is not None:
            raise self._error
        return ZegoCredentials(self._app_id, self._secrets[self._index])

    def refresh(self, stale: ZegoCredentials) -> ZegoCredentials:
        self.refreshes += 1
        if self._refresh_error is not None:
            raise self._refresh_error
        self._index = min(self._index + 1, len(self._secrets) - 1)
        return self.current()


class AdmittingPacer:
    """A Pacer that admits every call at once, and records what it was asked."""

    def __init__(self) -> None:
        self.acquisitions: list[float] = []
        self.pauses: list[float] = []

    def acquire(self, latest_start: float) -> bool:
        self.acquisitions.append(latest_start)
        return True

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


class DeadlinePacer(AdmittingPacer):
    """A Pacer with no rate limit that still refuses a start after `latest_start`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    def acquire(self, latest_start: float) -> bool:
        self.acquisitions.append(latest_start)
        return self._clock() <= latest_start


class FakeDeadLetters:
    """The DeadLetterQueue's `send`: accepts every letter (or none), and keeps them."""

    def __init__(self, *, accept: bool = True) -> None:
        self._accept = accept
        self.sent: list[DeadLetter] = []
        self.sends = 0

    def send(self, letters: Sequence[DeadLetter]) -> list[bool]:
        self.sends += 1
        self.sent.extend(letters)
        return [self._accept] * len(letters)


class FakeLambdaContext:
    function_name = "zego-resume-streams"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:zego-resume-streams"
    aws_request_id = "4a0a8b5e-1f0e-4d6c-9f0e-6b1f2e3d4c5b"

    def __init__(self, remaining_millis: int = 60_000) -> None:
        self._remaining = remaining_millis

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining
