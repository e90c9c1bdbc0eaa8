"""In-memory fakes of the ports (ports.py) and of the few outside objects the adapters touch.

Small classes rather than mocks: each behaves like the real thing within what the tests need,
and records what it was asked so that a test can check the conversation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zego_resume.config import Settings
from zego_resume.domain.outage import OutageDetector
from zego_resume.domain.resumer import Resumer
from zego_resume.domain.retry import AttemptLoop
from zego_resume.ports import (
    DeadLetter,
    NoTurnBeforeDeadline,
    SecretError,
    Turn,
    ZegoAnswer,
    ZegoCredentials,
)
from zego_resume.runtime import Runtime

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
ROTATED_SECRET = "fedcba9876543210fedcba9876543210"


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
    deadline: float


Answer = int | BaseException


class FakeGateway:
    """ZegoGateway answering from a script.

    Like the real client, it takes the call's turn first and sends nothing (raising
    NoTurnBeforeDeadline) when the turn says no. Then `script` is consumed call by call (a code,
    or an exception to raise); once it is empty, a call carrying a stream id named in `by_stream`
    answers that id's code, any other call `default`.
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
        self.default = default  # what any call answers when nothing else applies; may change
        self._on_call = on_call
        self._lock = threading.Lock()
        self.calls: list[GatewayCall] = []

    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        deadline: float,
        turn: Turn,
    ) -> ZegoAnswer:
        if not turn():
            raise NoTurnBeforeDeadline
        turn.written(None)
        with self._lock:
            self.calls.append(GatewayCall(credentials, tuple(stream_ids), sequence, deadline))
            number = len(self.calls)
            if self._script:
                answer = self._script.pop(0)
            else:
                answer = next(
                    (self._by_stream[sid] for sid in stream_ids if sid in self._by_stream), self.default
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


class AdmittingBudget:
    """A RateBudget whose turns all say yes at once, and that records what it was asked."""

    def __init__(self) -> None:
        self.turns: list[float] = []  # the latest start of every turn taken
        self.expected: list[int] = []
        self.pauses: list[float] = []
        self.writes = 0  # turns reported written

    def turn(self, latest_start: float) -> Turn:
        return _RecordedTurn(self, latest_start)

    def _admit(self, latest_start: float) -> bool:
        return True

    def expect(self, calls: int) -> None:
        self.expected.append(calls)

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


class DeadlineBudget(AdmittingBudget):
    """A RateBudget with no rate limit that still refuses a start after `latest_start`."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    def _admit(self, latest_start: float) -> bool:
        return self._clock() <= latest_start


class InlineRunner:
    """A CallRunner that runs every task in turn in the caller's thread: no threads in unit tests.
    A task asked to run after `wait_until` on the fake clock is reported unfinished."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self.batches: list[int] = []

    def run(self, tasks: Sequence[Callable[[], Any]], *, wait_until: float) -> list[Any]:
        self.batches.append(len(tasks))
        results = []
        for task in tasks:
            in_time = self._clock is None or self._clock() <= wait_until
            results.append(task() if in_time else None)
        return results


class FakeDeadLetters:
    """A DeadLetterSink: accepts every letter (or none), and keeps them."""

    def __init__(self, *, accept: bool = True) -> None:
        self._accept = accept
        self.sent: list[DeadLetter] = []
        self.sends = 0
        self.deadlines: list[float] = []

    def send(self, letters: Sequence[DeadLetter], *, deadline: float) -> list[bool]:
        self.sends += 1
        self.deadlines.append(deadline)
        self.sent.extend(letters)
        return [self._accept] * len(letters)


def fake_runtime(
    gateway: FakeGateway,
    *,
    dead_letters: FakeDeadLetters | None = None,
    max_receive_count: int | None = 5,
    credentials: FakeCredentials | None = None,
    is_test: bool = False,
    decision_max_age_seconds: int = 10**10,
    redelivery: Any = None,
) -> Runtime:
    """A warm execution environment's runtime over fakes: no network, no threads, no sleeping."""
    settings = Settings(
        secret_id="zego/credentials",
        dead_letter_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/zego-resume-dlq",
        is_test=is_test,
        max_receive_count=max_receive_count,
        # The sample events were sent years ago: age gives up on them only where a test says so.
        decision_max_age_seconds=decision_max_age_seconds,
    )
    credentials = credentials or FakeCredentials()
    budget = AdmittingBudget()
    # No outage opens here: these runtimes test one invocation's retries (test_resumer.py tests
    # the detector).
    never = OutageDetector(10.0, open_after=10**9)
    attempts = AttemptLoop(gateway, credentials, budget, sleep=FakeSleep(), jitter=lambda: 0.5, outage=never)
    return Runtime(
        settings=settings,
        resumer=Resumer(attempts, credentials, budget, InlineRunner(), is_test=is_test),
        dead_letters=dead_letters if dead_letters is not None else FakeDeadLetters(),
        redelivery=redelivery,
    )


class _RecordedTurn:
    def __init__(self, budget: AdmittingBudget, latest_start: float) -> None:
        self._budget = budget
        self._latest_start = latest_start

    def __call__(self) -> bool:
        self._budget.turns.append(self._latest_start)
        return self._budget._admit(self._latest_start)

    def written(self, at: float | None) -> None:
        self._budget.writes += 1
