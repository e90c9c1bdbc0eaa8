"""ZEGO's rules for ``ResumeRTCStreams`` / ``ForbidRTCStreams``, and what the emulator records.

Pure: no sockets, no threads, no sleeping. The wall clock (for the Timestamp window) is injected,
and each call is handed in with its arrival time, so tests drive every rule by hand. Not
thread-safe on its own: ``ZegoEmulator`` calls it under one lock.

The checks, in order, and the Code each failure gets are listed in ``docs/emulator.md`` (The
rules, in order). Two choices are ours, where ZEGO is silent:

- a missing or malformed ``Sequence`` answers Code ``2`` ("Incorrect input parameter" in ZEGO's
  public return codes) with a Message naming ``Sequence``, not ``30006``: the function under test
  reads ``30006`` as "some stream id is refused" and splits the call to find it, which no
  Sequence problem should trigger;
- a repeated or older ``Sequence`` within 10 s leaves the stream unchanged and still answers 0
  (ZEGO's probable behaviour) unless ``stale_code`` is set.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import parse_qs

from .faults import Fault, FaultPlan

RESUME = "ResumeRTCStreams"
FORBID = "ForbidRTCStreams"
ACTIONS = {RESUME: "resumed", FORBID: "forbidden"}

MAX_TIMESTAMP_SKEW = 600  # seconds; ZEGO: "at most 10 minutes off the server clock"
SEQUENCE_WINDOW = 10.0  # seconds; ZEGO: "within 10 consecutive seconds"
RATE_WINDOW = 1.0  # seconds; ZEGO's limit is per second
MAX_STREAM_IDS = 20
DEFAULT_RATE_LIMIT = 20
DEFAULT_TEST_RATE_LIMIT = 5

SUCCESS = 0
INVALID_PARAMETER = 2  # ZEGO's public "Incorrect input parameter"; here only for Sequence
RATE_LIMITED = 30002
IS_TEST_MISMATCH = 30004
INVALID_STREAM_IDS = 30006

_APP_ID = re.compile(r"[0-9]{1,10}")
_NONCE = re.compile(r"[0-9a-fA-F]{16}")
_TIMESTAMP = re.compile(r"-?[0-9]{1,18}")
_SIGNATURE = re.compile(r"[0-9a-f]{32}")
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SEQUENCE = re.compile(r"[0-9]{1,64}")  # 64 digits keeps int() cheap

MESSAGES = {
    SUCCESS: "success",
    INVALID_PARAMETER: "incorrect input parameter",
    RATE_LIMITED: "call rate too high",
    30003: "internal error",
    IS_TEST_MISMATCH: "IsTest parameter error",
    30005: "invalid AppId",
    INVALID_STREAM_IDS: "invalid StreamId list",
    42003: "batch forbid failed",
    42004: "batch resume failed",
    100000001: "invalid AppId",
    100000002: "invalid SignatureNonce",
    100000003: "unknown Action",
    100000004: "signature expired",
    100000005: "signature mismatch",
    100000006: "invalid Timestamp",
    100000007: "invalid Signature",
    100000008: "unsupported SignatureVersion",
    100000010: "AppId not found",
    100000015: "gateway internal error",
}
SEQUENCE_MISSING = "Sequence is missing"
SEQUENCE_MALFORMED = "Sequence must be 1 to 64 ASCII digits"


def zego_signature(app_id: int | str, nonce: str, server_secret: str, timestamp: int | str) -> str:
    """ZEGO signature version 2.0: lowercase hex md5 of the four values concatenated."""
    text = f"{app_id}{nonce}{server_secret}{timestamp}"
    # md5 is not our choice: it is how ZEGO defines signature 2.0.
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324


def message_for(code: int) -> str:
    """The Message answered with a Code when nothing more specific is known."""
    return MESSAGES.get(code, "error")


@dataclass(frozen=True)
class CallRecord:
    """One request received on ``/``. ``query`` holds the signature: never print it.

    ``arrival`` is when the call reached the rules (after its network jitter, before any answer
    latency); ``jitter`` is the network delay drawn for it and ``connection_setup_delay`` the
    set-up delay its connection made it wait (0 but for a connection's first request).
    """

    arrival: float
    action: str
    app_id: str | None
    stream_ids: tuple[str, ...]
    sequence: str | None
    code: int | None
    request_id: str
    fault: Fault | None
    query: str = field(repr=False)
    applied_stream_ids: tuple[str, ...] = ()
    jitter: float = 0.0
    connection_setup_delay: float = 0.0


@dataclass(frozen=True)
class StaleRecord:
    """A stream left unchanged by the Sequence rule."""

    stream_id: str
    sequence: int
    previous_sequence: int
    action: str
    arrival: float


@dataclass(frozen=True)
class Decision:
    """What the rules made of one call: the record kept, and the Message of its JSON answer
    (``record.code`` is None when the fault answers something other than ZEGO's JSON)."""

    record: CallRecord
    message: str


@dataclass(frozen=True)
class _Refusal:
    code: int
    message: str


def _refuse(code: int) -> _Refusal:
    return _Refusal(code, message_for(code))


def _new_request_id() -> str:
    return uuid.uuid4().hex


class ZegoRules:
    """ZEGO's checks and state for one AppId: feed it calls with ``receive``, read the records."""

    def __init__(
        self,
        app_id: int,
        server_secret: str,
        *,
        is_test: bool = False,
        rate_limit: int | None = None,
        stale_code: int | None = None,
        clock: Callable[[], float] = time.time,
        request_ids: Callable[[], str] = _new_request_id,
    ) -> None:
        if not 0 <= app_id <= 0xFFFFFFFF:
            raise ValueError("app_id must be a uint32")
        if rate_limit is None:
            rate_limit = DEFAULT_TEST_RATE_LIMIT if is_test else DEFAULT_RATE_LIMIT
        if rate_limit < 1:
            raise ValueError("rate_limit must be >= 1")
        self.app_id = app_id
        self.is_test = is_test
        self.rate_limit = rate_limit
        self.stale_code = stale_code
        self._secret = server_secret
        self._clock = clock
        self._request_ids = request_ids
        self.reset()

    def rotate_secret(self, new_secret: str) -> None:
        """Use a new ServerSecret from now on; the old one then fails with 100000005."""
        self._secret = new_secret

    def reset(self) -> None:
        """Forget every record, stream state and the rate window."""
        self._calls: list[CallRecord] = []
        self._stale: list[StaleRecord] = []
        self._states: dict[str, tuple[str, int]] = {}  # stream -> (state, Sequence)
        self._last_applied: dict[str, tuple[int, float]] = {}  # stream -> (Sequence, arrival)
        # Arrivals the rate limiter counted in the last two seconds, in arrival order.
        self._window: list[float] = []
        self._max_window = 0
        self._rate_limited = 0
        self._codes: dict[int, int] = {}

    # ----- one call --------------------------------------------------------------------------

    def receive(
        self,
        query: str,
        arrival: float,
        *,
        faults: FaultPlan | None = None,
        jitter: float = 0.0,
        connection_setup_delay: float = 0.0,
    ) -> Decision:
        """Judge one call that reached ZEGO at `arrival` (seconds), record it, and apply it when
        it passes. Calls are judged in the order they come; a call may have arrived a little
        earlier than one judged before it (the network overtakes), and the rate window counts it
        where it arrived."""
        # parse_qs decodes a percent-encoded bracket too, so StreamId%5B%5D lands under StreamId[].
        params = parse_qs(query, keep_blank_values=True)
        action = _first(params, "Action")
        stream_ids = tuple(params.get("StreamId[]", ()))
        sequence = _first(params, "Sequence")

        fault: Fault | None = None
        applied: tuple[str, ...] = ()
        refusal = self._check_common(params) or self._admit(arrival) or self._check_business(params)
        if refusal is not None:
            code, message = refusal.code, refusal.message
        else:
            code, message = SUCCESS, message_for(SUCCESS)
            fault = faults.next_for(stream_ids) if faults is not None else None
            if fault is None or fault.apply:
                stale_hit, applied = self._apply(
                    cast(str, action), stream_ids, int(cast(str, sequence)), arrival
                )
                if stale_hit and self.stale_code is not None:
                    code, message = self.stale_code, message_for(self.stale_code)
        answer_code = _answer_code(fault, code)
        if fault is not None and fault.code is not None:
            message = message_for(fault.code)

        record = CallRecord(
            arrival=arrival,
            action=action or "",
            app_id=_first(params, "AppId"),
            stream_ids=stream_ids,
            sequence=sequence,
            code=answer_code,
            request_id=self._request_ids(),
            fault=fault,
            query=query,
            applied_stream_ids=applied,
            jitter=jitter,
            connection_setup_delay=connection_setup_delay,
        )
        self._calls.append(record)
        if answer_code is not None:
            self._codes[answer_code] = self._codes.get(answer_code, 0) + 1
        return Decision(record, message)

    def _check_common(self, params: Mapping[str, list[str]]) -> _Refusal | None:
        """The gateway's checks: the common parameters, the AppId, the clock, the signature."""
        if _first(params, "Action") not in ACTIONS:
            return _refuse(100000003)
        app_id = _first(params, "AppId")
        nonce = _first(params, "SignatureNonce")
        timestamp = _first(params, "Timestamp")
        signature = _first(params, "Signature")
        if app_id is None or not _APP_ID.fullmatch(app_id) or int(app_id) > 0xFFFFFFFF:
            return _refuse(100000001)
        if nonce is None or not _NONCE.fullmatch(nonce):
            return _refuse(100000002)
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            return _refuse(100000006)
        if signature is None or not _SIGNATURE.fullmatch(signature):
            return _refuse(100000007)
        if _first(params, "SignatureVersion") != "2.0":
            return _refuse(100000008)
        if int(app_id) != self.app_id:
            return _refuse(100000010)
        if abs(int(timestamp) - self._clock()) > MAX_TIMESTAMP_SKEW:
            return _refuse(100000004)
        # AppId and Timestamp signed as canonical decimal strings, with the *current* secret.
        expected = zego_signature(int(app_id), nonce, self._secret, int(timestamp))
        if not hmac.compare_digest(expected, signature):
            return _refuse(100000005)
        return None

    def _admit(self, arrival: float) -> _Refusal | None:
        """The sliding one-second window, counted at arrival: a call is refused when some second
        that holds its arrival already holds `rate_limit` counted calls, wherever they were
        judged. A refused call does not use up the budget; Forbid and Resume share it."""
        window = self._window
        while window and window[0] < window[-1] - 2 * RATE_WINDOW:
            del window[0]
        place = bisect.bisect_left(window, arrival)
        window.insert(place, arrival)
        busiest = _busiest_second_holding(window, place)
        if busiest > self.rate_limit:
            del window[place]
            self._rate_limited += 1
            return _refuse(RATE_LIMITED)
        self._max_window = max(self._max_window, busiest)
        return None

    def _check_business(self, params: Mapping[str, list[str]]) -> _Refusal | None:
        """The API's own parameters: IsTest, the stream ids, the Sequence."""
        is_test = _first(params, "IsTest")
        if is_test not in (None, "true", "false") or (is_test == "true") != self.is_test:
            return _refuse(IS_TEST_MISMATCH)
        stream_ids = params.get("StreamId[]", [])
        # Counted before de-duplication: ZEGO limits the list sent, not the streams named.
        if not 1 <= len(stream_ids) <= MAX_STREAM_IDS:
            return _refuse(INVALID_STREAM_IDS)
        prefix = f"zegotest-{self.app_id}-"
        for stream_id in stream_ids:
            if not _STREAM_ID.fullmatch(stream_id):
                return _refuse(INVALID_STREAM_IDS)
            if self.is_test and not stream_id.startswith(prefix):
                return _refuse(INVALID_STREAM_IDS)
        sequence = _first(params, "Sequence")
        if sequence is None:
            return _Refusal(INVALID_PARAMETER, SEQUENCE_MISSING)
        if not _SEQUENCE.fullmatch(sequence):
            return _Refusal(INVALID_PARAMETER, SEQUENCE_MALFORMED)
        return None

    def _apply(
        self, action: str, stream_ids: tuple[str, ...], sequence: int, arrival: float
    ) -> tuple[bool, tuple[str, ...]]:
        """The Sequence rule, per stream. Returns (some stream was stale, the streams applied)."""
        unique = tuple(dict.fromkeys(stream_ids))  # duplicates in one call count once
        fresh: list[str] = []
        stale: list[StaleRecord] = []
        for stream_id in unique:
            last = self._last_applied.get(stream_id)
            if last is not None and arrival - last[1] <= SEQUENCE_WINDOW and sequence <= last[0]:
                stale.append(StaleRecord(stream_id, sequence, last[0], action, arrival))
            else:
                fresh.append(stream_id)
        self._stale.extend(stale)
        if stale and self.stale_code is not None:
            return True, ()  # the whole call is refused
        state = ACTIONS[action]
        for stream_id in fresh:
            self._states[stream_id] = (state, sequence)
            self._last_applied[stream_id] = (sequence, arrival)
        return bool(stale), tuple(fresh)

    # ----- records ---------------------------------------------------------------------------

    def calls(self) -> list[CallRecord]:
        """Every call received, in arrival order."""
        return list(self._calls)

    def applied(self) -> list[CallRecord]:
        """Calls answered 0 without a fault that applied at least one stream."""
        return [c for c in self._calls if _was_applied(c)]

    def resumed_stream_ids(self) -> set[str]:
        """Streams whose current state is resumed."""
        return {s for s, (state, _) in self._states.items() if state == "resumed"}

    def stream_state(self, stream_id: str) -> tuple[str, int] | None:
        """``("resumed" | "forbidden", last applied Sequence)``, or None if never applied."""
        return self._states.get(stream_id)

    def stale(self) -> list[StaleRecord]:
        """Every stream refused by the Sequence rule."""
        return list(self._stale)

    def rate_limited_count(self) -> int:
        """How many calls were answered 30002."""
        return self._rate_limited

    def max_calls_in_any_window(self) -> int:
        """Most calls counted by the rate limiter whose arrivals fit in one 1.0 s window."""
        return self._max_window

    def code_counts(self) -> dict[int, int]:
        """How many times each Code was answered (calls without a JSON answer are not counted)."""
        return dict(self._codes)

    def summary(self) -> dict[str, Any]:
        """The counts the admin API's state document shows."""
        return {
            "calls": len(self._calls),
            "applied": sum(1 for c in self._calls if _was_applied(c)),
            "rateLimited": self._rate_limited,
            "stale": len(self._stale),
            "codes": {str(k): v for k, v in sorted(self._codes.items())},
            "maxCallsInAnyWindow": self._max_window,
            "resumedStreamIds": sum(1 for state, _ in self._states.values() if state == "resumed"),
        }


def _first(params: Mapping[str, list[str]], name: str) -> str | None:
    # A repeated parameter: the first one counts.
    values = params.get(name)
    return values[0] if values else None


def _answer_code(fault: Fault | None, code: int) -> int | None:
    """The Code answered in JSON, or None when the fault answers something else."""
    if fault is None:
        return code
    if not fault.answers_json:
        return None
    if fault.code is not None:
        return fault.code
    return code if fault.apply else None  # a delay that applied nothing: an upstream timeout


def _was_applied(call: CallRecord) -> bool:
    return call.code == 0 and call.fault is None and bool(call.applied_stream_ids)


def _busiest_second_holding(arrivals: list[float], place: int) -> int:
    """The most arrivals (sorted) in one half-open second [start, start + 1) that holds
    arrivals[place]: every such second starts at an arrival at most a second before it."""
    arrival = arrivals[place]
    busiest = 0
    end = place
    start = bisect.bisect_right(arrivals, arrival - RATE_WINDOW, hi=place)
    for first in range(start, place + 1):
        while end < len(arrivals) and arrivals[end] < arrivals[first] + RATE_WINDOW:
            end += 1
        busiest = max(busiest, end - first)
    return busiest
