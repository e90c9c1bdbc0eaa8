"""The shapes the domain expects of its adapters, and the values that cross between them.

Tests replace each port with an in-memory fake (tests/unit/fakes.py). Every port's docstring ends
by telling the caller what to do on each error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class ZegoCredentials:
    app_id: int
    # Kept out of repr, so that no log line, error or traceback can carry it by accident.
    server_secret: str = field(repr=False)


@dataclass(frozen=True)
class ZegoAnswer:
    code: int
    message: str
    request_id: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """One message for the dead-letter queue: a body and its String message attributes."""

    body: str
    attributes: dict[str, str]

    def size(self) -> int:
        """Bytes SQS counts against its limits: body, attribute names, types and values."""
        return len(self.body.encode()) + sum(
            len(name) + len("String") + len(value.encode()) for name, value in self.attributes.items()
        )


class TransportError(Exception):
    """No usable answer from ZEGO (timeout, connection, non-2xx, non-JSON). Always transient.

    `code` is a name such as Timeout or HttpError; `message` never holds the URL, which is signed.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class NoTurnBeforeDeadline(TransportError):
    """No rate-limit turn could be had before the deadline, so nothing was sent: ZEGO cannot have
    seen this attempt. Stop making attempts in this invocation."""

    def __init__(self) -> None:
        super().__init__("Timeout", "the invocation ran out of time before this call could be made")


class SecretError(Exception):
    """The ZEGO credentials could not be had (`code` SecretUnavailable or InvalidSecret).

    Transient from the decision's point of view: retry later; an operator may have to fix the secret.
    The message names what is wrong, never a value.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Turn(Protocol):
    """A call's turn, taken by the gateway once its connection is open, right before the request
    is written."""

    def __call__(self) -> bool:
        """Wait for the call's start and answer True (write now) or False (no start could be had
        before the deadline: do not send)."""
        ...

    def written(self, at: float | None) -> None:
        """The request has been written: `at` is when it left (time.time(), as the kernel
        stamped it), None when unknown (then now, right after the write returned, counts)."""
        ...


class RateBudget(Protocol):
    def turn(self, latest_start: float) -> Turn:
        """A turn for one call that must start by `latest_start` (a time.monotonic() value).
        Cheap: nothing is reserved until the turn is taken."""
        ...

    def expect(self, calls: int) -> None:
        """A hint: about this many calls will ask for turns soon (a shared ledger can then reserve
        several starts in one request)."""
        ...

    def pause(self, seconds: float) -> None:
        """Start no call for `seconds` from now (ZEGO answered 30002: the budget is overspent)."""
        ...


class ZegoGateway(Protocol):
    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        deadline: float,
        turn: Turn,
    ) -> ZegoAnswer:
        """One signed ResumeRTCStreams call, taking `turn` right before the request is written and
        finished, body included, by `deadline` (a time.monotonic() value).

        Raises TransportError: retry with back-off (a fresh turn and a higher Sequence).
        """
        ...


class CredentialSource(Protocol):
    def current(self) -> ZegoCredentials:
        """The cached credentials. Raises SecretError: retry later."""
        ...

    def refresh(self, stale: ZegoCredentials) -> ZegoCredentials:
        """Fresh credentials after ZEGO refused `stale` (unless another call already refreshed
        them). Raises SecretError: retry later."""
        ...


class CallRunner(Protocol):
    def run(self, tasks: Sequence[Callable[[], T]], *, wait_until: float) -> list[T | None]:
        """Run every task, in order of submission, some at once; each result in the task's place,
        or None for a task that had not finished by `wait_until` (a time.monotonic() value).
        Never raises for a task: a task reports its own failures in its result."""
        ...


class DeadLetterSink(Protocol):
    def send(self, letters: Sequence[DeadLetter], *, deadline: float) -> list[bool]:
        """Send every letter before `deadline` (a time.monotonic() value); the result says,
        letter by letter, whether it was accepted.

        Never raises. A False means: do not acknowledge that letter's source message.
        """
        ...


@dataclass(frozen=True)
class Redelivery:
    """An SQS message handed back, to come back after `seconds`."""

    queue_arn: str
    receipt_handle: str
    seconds: int


class RedeliveryDelay(Protocol):
    def delay(self, redeliveries: Sequence[Redelivery], *, deadline: float) -> list[str]:
        """Delay each message's next delivery; never raises. Returns why delays failed."""
        ...
