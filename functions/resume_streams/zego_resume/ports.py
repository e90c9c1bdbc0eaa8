"""The shapes the domain expects of its adapters. Tests replace each with an in-memory fake."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


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


class TransportError(Exception):
    """No usable answer from ZEGO (timeout, connection, non-2xx, non-JSON). Always transient.

    `code` is a name such as Timeout or HttpError; `message` never holds the URL, which is signed.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SecretError(Exception):
    """The ZEGO credentials could not be had (`code` SecretUnavailable or InvalidSecret).

    Transient from the decision's point of view: retry later; an operator may have to fix the secret.
    The message names what is wrong, never a value.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ZegoGateway(Protocol):
    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        time_left: float,
    ) -> ZegoAnswer:
        """One signed ResumeRTCStreams call. Raises TransportError: retry with back-off."""
        ...


class CredentialSource(Protocol):
    def current(self) -> ZegoCredentials:
        """The cached credentials. Raises SecretError: retry later."""
        ...

    def refresh(self, stale: ZegoCredentials) -> ZegoCredentials:
        """Fresh credentials after ZEGO refused `stale` (unless another call already refreshed
        them). Raises SecretError: retry later."""
        ...


class Pacer(Protocol):
    def acquire(self, latest_start: float) -> bool:
        """Wait for this call's turn; False (without waiting) if it would come after
        `latest_start` (a time.monotonic() value)."""
        ...

    def pause(self, seconds: float) -> None:
        """Start no call for `seconds` (ZEGO answered 30002)."""
        ...
