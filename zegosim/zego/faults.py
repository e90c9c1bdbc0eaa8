"""Misbehaviours to answer validated calls with, and the plan that hands them out.

Pure: no sockets, no threads, no sleeping (a ``Fault``'s delay is slept by the server). Not
thread-safe on its own: the emulator calls a ``FaultPlan`` under its lock. See
``docs/emulator.md`` (Faults) for how they look from the client's side.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """One misbehaviour to answer a validated call with.

    At most one of ``code``, ``http_status``, ``drop``, ``non_json`` may be set; ``delay`` and
    ``apply`` combine with any of them.
    """

    code: int | None = None
    http_status: int | None = None
    delay: float = 0.0
    drop: bool = False
    non_json: bool = False
    apply: bool = False

    def __post_init__(self) -> None:
        kinds = [self.code is not None, self.http_status is not None, self.drop, self.non_json]
        if sum(kinds) > 1:
            raise ValueError("a Fault takes at most one of code, http_status, drop, non_json")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if self.http_status is not None and not 200 <= self.http_status <= 599:
            raise ValueError("http_status must be 200..599")

    @classmethod
    def of_code(cls, code: int, *, apply: bool = False) -> Fault:
        """Answer this ZEGO Code (HTTP 200, JSON)."""
        return cls(code=code, apply=apply)

    @classmethod
    def http(cls, status: int = 503, *, apply: bool = False) -> Fault:
        """Answer this HTTP status with a short plain-text body."""
        return cls(http_status=status, apply=apply)

    @classmethod
    def slow(cls, seconds: float, *, apply: bool = True) -> Fault:
        """Answer late; by default the call is applied (a success the client may never see)."""
        return cls(delay=seconds, apply=apply)

    @classmethod
    def dropped(cls, *, apply: bool = False) -> Fault:
        """Close the connection without answering."""
        return cls(drop=True, apply=apply)

    @classmethod
    def garbage(cls, *, apply: bool = False) -> Fault:
        """Answer HTTP 200 with an HTML page instead of JSON."""
        return cls(non_json=True, apply=apply)

    @property
    def answers_json(self) -> bool:
        """Whether the client still gets a ZEGO JSON document (a Code, or a late answer)."""
        return not (self.drop or self.http_status is not None or self.non_json)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Build from the admin API's camelCase form, e.g. ``{"httpStatus": 503}``."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {"code", "httpStatus", "delay", "drop", "nonJson", "apply"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        code = data.get("code")
        status = data.get("httpStatus")
        delay = data.get("delay", 0.0)
        flags = {k: data.get(k, False) for k in ("drop", "nonJson", "apply")}
        if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
            raise ValueError("code must be an integer")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise ValueError("httpStatus must be an integer")
        if isinstance(delay, bool) or not isinstance(delay, (int, float)):
            raise ValueError("delay must be a number")
        if not all(isinstance(v, bool) for v in flags.values()):
            raise ValueError("drop, nonJson and apply must be booleans")
        return cls(
            code=code,
            http_status=status,
            delay=float(delay),
            drop=flags["drop"],
            non_json=flags["nonJson"],
            apply=flags["apply"],
        )


class FaultPlan:
    """Which validated call gets which fault: one aimed at a stream first, then the queue, then
    a seeded random draw."""

    def __init__(self) -> None:
        self._targeted: dict[str, tuple[Fault, int | None]] = {}  # stream -> (fault, calls left)
        self._queued: deque[Fault] = deque()
        self._random: tuple[Fault, ...] = ()
        self._probability = 0.0
        self._rng = random.Random(0)

    def inject(self, *faults: Fault) -> None:
        """Give the next ``len(faults)`` validated calls one fault each, in order."""
        self._queued.extend(faults)

    def inject_randomly(self, faults: Sequence[Fault], probability: float, seed: int = 0) -> None:
        """Give each validated call a random fault with this probability (0 turns it off)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if probability > 0 and not faults:
            raise ValueError("faults must not be empty")
        self._random = tuple(faults)
        self._probability = probability
        self._rng = random.Random(seed)

    def inject_for_stream(self, stream_id: str, fault: Fault, *, times: int | None = None) -> None:
        """Give every validated call that carries `stream_id` this fault (only the next `times`
        such calls, when given). Comes before queued and random faults: tests use it to make one
        decision fail while the rest of its batch, sent in parallel, goes through."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        self._targeted[stream_id] = (fault, times)

    def clear(self) -> None:
        """Forget targeted, queued and random faults."""
        self._targeted.clear()
        self._queued.clear()
        self._random = ()
        self._probability = 0.0

    def next_for(self, stream_ids: Sequence[str]) -> Fault | None:
        """The fault for a validated call carrying these streams, used up as it is handed out."""
        for stream_id in stream_ids:
            targeted = self._targeted.get(stream_id)
            if targeted is None:
                continue
            fault, times = targeted
            if times is None:
                return fault
            if times > 1:
                self._targeted[stream_id] = (fault, times - 1)
            else:
                del self._targeted[stream_id]
            return fault
        if self._queued:
            return self._queued.popleft()
        if self._probability > 0 and self._rng.random() < self._probability:
            return self._rng.choice(self._random)
        return None
