"""Correctly signed ZEGO queries for the emulator's tests, built independently of the emulator, and
a `Caller` that hands them to the rules at arrival times the test sets."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any
from urllib.parse import urlencode

from zegosim.zego.faults import FaultPlan
from zegosim.zego.rules import Decision, ZegoRules

from .fake_clock import FakeClock

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
NOW = 1_764_410_000.0  # the emulator's wall clock in these tests

_nonces = itertools.count(1)


def sign(app_id: int | str, nonce: str, secret: str, timestamp: int | str) -> str:
    """ZEGO signature 2.0 straight from ZEGO's documentation, not from the emulator's code."""
    return hashlib.md5(f"{app_id}{nonce}{secret}{timestamp}".encode()).hexdigest()  # noqa: S324


def fresh_nonce() -> str:
    return f"{next(_nonces):016x}"


def build_query(
    *,
    action: str | None = "ResumeRTCStreams",
    stream_ids: tuple[str, ...] = ("stream-a",),
    sequence: str | None = "1",
    app_id: int | str = APP_ID,
    secret: str = SECRET,
    timestamp: int | str | None = None,
    is_test: str | None = None,
    overrides: dict[str, str | None] | None = None,
    encode_brackets: bool = False,
) -> str:
    """A correctly signed query; `overrides` replaces (or, with None, removes) common parameters."""
    nonce = fresh_nonce()
    ts = str(int(NOW)) if timestamp is None else str(timestamp)
    common: dict[str, str | None] = {
        "Action": action,
        "AppId": str(app_id),
        "SignatureNonce": nonce,
        "Timestamp": ts,
        "Signature": sign(app_id, nonce, secret, ts),
        "SignatureVersion": "2.0",
        "IsTest": is_test,
    }
    common.update(overrides or {})
    pairs = [(k, v) for k, v in common.items() if v is not None]
    pairs += [("StreamId[]", s) for s in stream_ids]
    if sequence is not None:
        pairs.append(("Sequence", sequence))
    return urlencode(pairs, safe="" if encode_brackets else "[]")


class Caller:
    """Sends signed calls to the rules, each arriving at `arrivals.now`."""

    def __init__(self, rules: ZegoRules, arrivals: FakeClock) -> None:
        self.rules = rules
        self.arrivals = arrivals
        self.faults = FaultPlan()

    def send(self, **query: Any) -> Decision:
        return self.rules.receive(build_query(**query), self.arrivals.now, faults=self.faults)

    def code(self, **query: Any) -> int | None:
        return self.send(**query).record.code


def make_caller(**options: Any) -> Caller:
    options.setdefault("clock", FakeClock(NOW))
    rules = ZegoRules(APP_ID, SECRET, **options)
    return Caller(rules, FakeClock(100.0))
