"""A local stand-in for ZEGOCLOUD's Server API (``ResumeRTCStreams`` / ``ForbidRTCStreams``).

It checks what ZEGO documents (see ZEGO-API.md) and records what it saw, so tests, the demo and
benchmarks can assert on ZEGO-side effects without a ZEGO account. Standard library only, so it
starts in milliseconds.

Validation order, and the code each failure gets (ZEGO does not publish a per-field mapping for
every parameter, so where it is silent the closest documented code is used):

1.  ``Action`` missing or not one of the two actions            -> 100000003
2.  ``AppId`` missing or not a uint32 digit string              -> 100000001
    ``SignatureNonce`` missing or not 16 hex characters         -> 100000002
    ``Timestamp`` missing or not an integer (at most 18 digits)  -> 100000006
    ``Signature`` missing or not 32 lowercase hex characters    -> 100000007
    ``SignatureVersion`` not exactly ``2.0``                    -> 100000008
3.  ``AppId`` is not this emulator's                            -> 100000010
4.  ``|Timestamp - clock()| > 600`` seconds                     -> 100000004
5.  ``Signature`` is not md5(AppId + nonce + secret + Timestamp) -> 100000005
    (AppId and Timestamp as canonical decimal strings; the *current* secret)
6.  more than ``rate_limit`` calls that passed 1-5 in the last 1.0 s -> 30002
    (a call answered 30002 does not use up the budget; Forbid and Resume share it)
7.  ``IsTest`` not ``true``/``false``, or not matching the emulator's environment -> 30004
8.  ``StreamId[]`` missing, more than 20 values (counted before de-duplication), an id outside
    ``[A-Za-z0-9_-]{1,256}``, or, in test mode, without ``zegotest-<AppId>-``  -> 30006
9.  ``Sequence`` missing or not 1..64 ASCII digits              -> 30006 too (ZEGO names no code for
    it; 30006 is the "bad business parameters" code, and 64 digits keeps ``int()`` cheap)
10. injected faults (queued first, else random) hit calls that passed 1-9
11. the Sequence rule, per stream: when the stream's last *applied* request arrived at most 10 s
    before and the new Sequence is not strictly greater, the stream is not applied and a
    ``StaleRecord`` is kept. The call still answers 0 (ZEGO's probable behaviour: ignore
    silently) unless ``stale_code`` is set; then the whole call answers ``stale_code`` and
    nothing in it is applied.
12. ``{"Code": 0, "Message": "success", "RequestId": ..., "Data": null}``, HTTP 200.

A fault that only delays (``Fault.slow``) answers normally after the delay when it applies the
call, and HTTP 504 when it does not (an upstream timeout that changed nothing). ``latency`` is
added to every answer of the API path ``/``, not to the admin API.

Admin API (for a demo or benchmark in another process; it never echoes a secret or signature):
``GET /_emulator/state``, ``POST /_emulator/faults`` (``{"next": [...]}``,
``{"random": [...], "probability": p, "seed": s}`` or ``{"clear": true}``),
``POST /_emulator/latency`` ``{"seconds": s}``, ``POST /_emulator/secret``
``{"serverSecret": "..."}``, ``POST /_emulator/reset``.

Command line: ``python -m zegosim.zego --app-id N --server-secret HEX [--port 8787] [--test]
[--rate-limit N] [--latency S]`` (the secret may come from ``ZEGO_SERVER_SECRET`` instead, which
keeps it out of the process list).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

RESUME = "ResumeRTCStreams"
FORBID = "ForbidRTCStreams"
_ACTIONS = {RESUME: "resumed", FORBID: "forbidden"}

MAX_TIMESTAMP_SKEW = 600  # seconds; ZEGO: "at most 10 minutes off the server clock"
SEQUENCE_WINDOW = 10.0  # seconds; ZEGO: "within 10 consecutive seconds"
RATE_WINDOW = 1.0  # seconds; ZEGO's limit is per second
MAX_STREAM_IDS = 20
DEFAULT_RATE_LIMIT = 20
DEFAULT_TEST_RATE_LIMIT = 5

_APP_ID = re.compile(r"[0-9]{1,10}")
_NONCE = re.compile(r"[0-9a-fA-F]{16}")
_TIMESTAMP = re.compile(r"-?[0-9]{1,18}")
_SIGNATURE = re.compile(r"[0-9a-f]{32}")
_STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SEQUENCE = re.compile(r"[0-9]{1,64}")

_MESSAGES = {
    0: "success",
    30002: "call rate too high",
    30003: "internal error",
    30004: "IsTest parameter error",
    30005: "invalid AppId",
    30006: "invalid StreamId list or Sequence",
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

_ADMIN_PREFIX = "/_emulator/"
# What a load balancer in front of an API typically returns when its upstream fails.
_HTML_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
_MAX_ADMIN_BODY = 64 * 1024


def zego_signature(app_id: int | str, nonce: str, server_secret: str, timestamp: int | str) -> str:
    """ZEGO signature version 2.0: lowercase hex md5 of the four values concatenated."""
    text = f"{app_id}{nonce}{server_secret}{timestamp}"
    # md5 is not our choice: it is how ZEGO defines signature 2.0.
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324


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


@dataclass(frozen=True)
class CallRecord:
    """One request received on ``/``. ``query`` holds the signature: never print it."""

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


@dataclass(frozen=True)
class StaleRecord:
    """A stream left unchanged by the Sequence rule."""

    stream_id: str
    sequence: int
    previous_sequence: int
    action: str
    arrival: float


@dataclass(frozen=True)
class _Answer:
    """What the handler writes once the state is updated; the sleep happens outside the lock."""

    sleep: float
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False


class ZegoEmulator:
    """A threaded HTTP server answering like ZEGO's Server API, with fault injection and records."""

    # Everything below is guarded by self._lock and (re)initialised by _reset_locked().
    _calls: list[CallRecord]
    _stale: list[StaleRecord]
    _states: dict[str, tuple[str, int]]  # stream -> (state, Sequence)
    _last_applied: dict[str, tuple[int, float]]  # stream -> (Sequence, arrival) for the 10 s rule
    _window: deque[float]  # arrivals counted by the rate limiter in the last second
    _max_window: int
    _rate_limited: int
    _codes: dict[int, int]
    _connections: int
    _queued_faults: deque[Fault]
    _random_faults: tuple[Fault, ...]
    _fault_probability: float
    _rng: random.Random

    def __init__(
        self,
        app_id: int,
        server_secret: str,
        *,
        is_test: bool = False,
        rate_limit: int | None = None,
        latency: float = 0.0,
        stale_code: int | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not 0 <= app_id <= 0xFFFFFFFF:
            raise ValueError("app_id must be a uint32")
        if latency < 0:
            raise ValueError("latency must be >= 0")
        self.app_id = app_id
        self.is_test = is_test
        if rate_limit is None:
            rate_limit = DEFAULT_TEST_RATE_LIMIT if is_test else DEFAULT_RATE_LIMIT
        if rate_limit < 1:
            raise ValueError("rate_limit must be >= 1")
        self.rate_limit = rate_limit
        self.stale_code = stale_code
        self._secret = server_secret
        self._latency = latency
        self._clock = clock
        self._monotonic = monotonic
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open_sockets: set[socket.socket] = set()
        self._reset_locked()

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; return the base URL."""
        if self._server is not None:
            raise RuntimeError("already started")
        server = _Server((self._host, self._port), _Handler, self)
        self._server = server
        # A short poll interval keeps stop() fast; the cost is a few idle wake-ups a second.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="zego-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Keep-alive connections would otherwise keep being served after stop().
        with self._lock:
            sockets = list(self._open_sockets)
            self._open_sockets.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ZegoEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ----- control ---------------------------------------------------------------------------

    def rotate_secret(self, new_secret: str) -> None:
        """Use a new ServerSecret from now on; the old one then fails with 100000005."""
        with self._lock:
            self._secret = new_secret

    def set_latency(self, seconds: float) -> None:
        """Add this many seconds to every answer from now on."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._lock:
            self._latency = seconds

    def inject(self, *faults: Fault) -> None:
        """Give the next ``len(faults)`` validated calls one fault each, in order."""
        with self._lock:
            self._queued_faults.extend(faults)

    def inject_randomly(self, faults: Sequence[Fault], probability: float, seed: int = 0) -> None:
        """Give each validated call a random fault with this probability (0 turns it off)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if probability > 0 and not faults:
            raise ValueError("faults must not be empty")
        with self._lock:
            self._random_faults = tuple(faults)
            self._fault_probability = probability
            self._rng = random.Random(seed)

    def inject_for_stream(self, stream_id: str, fault: Fault, *, times: int | None = None) -> None:
        """Give every validated call that carries `stream_id` this fault (only the next `times`
        such calls, when given). Comes before queued and random faults: tests use it to make one
        decision fail while the rest of its batch, sent in parallel, goes through."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._stream_faults[stream_id] = (fault, times)

    def clear_faults(self) -> None:
        """Forget targeted, queued and random faults."""
        with self._lock:
            self._stream_faults.clear()
            self._queued_faults.clear()
            self._random_faults = ()
            self._fault_probability = 0.0

    def reset(self) -> None:
        """Clear records, stream state, faults and the rate window."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._calls = []
        self._stale = []
        self._states = {}
        self._last_applied = {}
        self._window = deque()
        self._max_window = 0
        self._rate_limited = 0
        self._codes = {}
        self._connections = 0
        self._queued_faults = deque()
        self._stream_faults: dict[str, tuple[Fault, int | None]] = {}
        self._random_faults = ()
        self._fault_probability = 0.0
        self._rng = random.Random(0)

    # ----- records ---------------------------------------------------------------------------

    def calls(self) -> list[CallRecord]:
        """Every request received on ``/``, in arrival order."""
        with self._lock:
            return list(self._calls)

    def applied(self) -> list[CallRecord]:
        """Calls answered 0 without a fault that applied at least one stream."""
        with self._lock:
            return [c for c in self._calls if _was_applied(c)]

    def resumed_stream_ids(self) -> set[str]:
        """Streams whose current state is resumed."""
        with self._lock:
            return {s for s, (state, _) in self._states.items() if state == "resumed"}

    def stream_state(self, stream_id: str) -> tuple[str, int] | None:
        """``("resumed" | "forbidden", last applied Sequence)``, or None if never applied."""
        with self._lock:
            return self._states.get(stream_id)

    def stale(self) -> list[StaleRecord]:
        """Every stream refused by the Sequence rule."""
        with self._lock:
            return list(self._stale)

    def rate_limited_count(self) -> int:
        """How many calls were answered 30002."""
        with self._lock:
            return self._rate_limited

    def max_calls_in_any_window(self) -> int:
        """Most calls counted by the rate limiter whose arrivals fit in one 1.0 s window."""
        with self._lock:
            return self._max_window

    def code_counts(self) -> dict[int, int]:
        """How many times each Code was answered (calls without a JSON answer are not counted)."""
        with self._lock:
            return dict(self._codes)

    def connection_count(self) -> int:
        """TCP connections accepted since start or reset (shows whether clients keep alive)."""
        with self._lock:
            return self._connections

    def state_summary(self) -> dict[str, Any]:
        """The admin API's ``/_emulator/state`` document."""
        with self._lock:
            return {
                "calls": len(self._calls),
                "applied": sum(1 for c in self._calls if _was_applied(c)),
                "rateLimited": self._rate_limited,
                "stale": len(self._stale),
                "codes": {str(k): v for k, v in sorted(self._codes.items())},
                "maxCallsInAnyWindow": self._max_window,
                "resumedStreamIds": sum(1 for state, _ in self._states.values() if state == "resumed"),
                "connections": self._connections,
            }

    # ----- connection bookkeeping (called by the handler) ------------------------------------

    def _connection_opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections += 1
            self._open_sockets.add(sock)

    def _connection_closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open_sockets.discard(sock)

    # ----- the API ---------------------------------------------------------------------------

    def _handle_api(self, query: str) -> _Answer:
        # parse_qs decodes a percent-encoded bracket too, so StreamId%5B%5D lands under StreamId[].
        params = parse_qs(query, keep_blank_values=True)
        action = _first(params, "Action")
        app_id = _first(params, "AppId")
        stream_ids = tuple(params.get("StreamId[]", ()))
        sequence = _first(params, "Sequence")
        request_id = uuid.uuid4().hex

        with self._lock:
            arrival = self._monotonic()  # taken under the lock so records stay in arrival order
            latency = self._latency
            fault: Fault | None = None
            applied: tuple[str, ...] = ()
            code = self._validate_locked(params, arrival)
            if code == 0:
                fault = self._next_fault_locked(stream_ids)
                if fault is None or fault.apply:
                    stale_hit, applied = self._apply_locked(
                        cast(str, action), stream_ids, cast(str, sequence), arrival
                    )
                    if stale_hit and self.stale_code is not None:
                        code = self.stale_code
            answer_code = self._fault_code(fault, code)
            self._calls.append(
                CallRecord(
                    arrival=arrival,
                    action=action or "",
                    app_id=app_id,
                    stream_ids=stream_ids,
                    sequence=sequence,
                    code=answer_code,
                    request_id=request_id,
                    fault=fault,
                    query=query,
                    applied_stream_ids=applied,
                )
            )
            if answer_code is not None:
                self._codes[answer_code] = self._codes.get(answer_code, 0) + 1

        sleep = latency + (fault.delay if fault else 0.0)
        if fault is not None:
            if fault.drop:
                return _Answer(sleep=sleep, drop=True)
            if fault.http_status is not None:
                return _plain_answer(sleep, fault.http_status)
            if fault.non_json:
                return _Answer(sleep=sleep, body=_HTML_ERROR_PAGE, content_type="text/html")
            if answer_code is None:  # a delay that applied nothing: an upstream timeout
                return _plain_answer(sleep, HTTPStatus.GATEWAY_TIMEOUT)
        return _json_answer(sleep, 200, _zego_body(cast(int, answer_code), request_id))

    @staticmethod
    def _fault_code(fault: Fault | None, code: int) -> int | None:
        """The Code answered in JSON, or None when the fault answers something else."""
        if fault is None:
            return code
        if fault.drop or fault.http_status is not None or fault.non_json:
            return None
        if fault.code is not None:
            return fault.code
        return code if fault.apply else None

    def _validate_locked(self, params: dict[str, list[str]], arrival: float) -> int:
        """Steps 1-9 of the module docstring; 0 when the call may proceed."""

        def first(name: str) -> str | None:
            return _first(params, name)

        if first("Action") not in _ACTIONS:
            return 100000003
        app_id = first("AppId")
        nonce = first("SignatureNonce")
        timestamp = first("Timestamp")
        signature = first("Signature")
        if app_id is None or not _APP_ID.fullmatch(app_id) or int(app_id) > 0xFFFFFFFF:
            return 100000001
        if nonce is None or not _NONCE.fullmatch(nonce):
            return 100000002
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            return 100000006
        if signature is None or not _SIGNATURE.fullmatch(signature):
            return 100000007
        if first("SignatureVersion") != "2.0":
            return 100000008
        if int(app_id) != self.app_id:
            return 100000010
        if abs(int(timestamp) - self._clock()) > MAX_TIMESTAMP_SKEW:
            return 100000004
        expected = zego_signature(int(app_id), nonce, self._secret, int(timestamp))
        if not hmac.compare_digest(expected, signature):
            return 100000005

        window = self._window
        while window and arrival - window[0] >= RATE_WINDOW:
            window.popleft()
        if len(window) >= self.rate_limit:
            self._rate_limited += 1
            return 30002
        window.append(arrival)
        # The window just counted ends at an arrival, so its size over time gives the maximum.
        self._max_window = max(self._max_window, len(window))

        is_test = first("IsTest")
        if is_test not in (None, "true", "false") or (is_test == "true") != self.is_test:
            return 30004

        stream_ids = params.get("StreamId[]", [])
        if not 1 <= len(stream_ids) <= MAX_STREAM_IDS:
            return 30006
        prefix = f"zegotest-{self.app_id}-"
        for stream_id in stream_ids:
            if not _STREAM_ID.fullmatch(stream_id):
                return 30006
            if self.is_test and not stream_id.startswith(prefix):
                return 30006
        sequence = first("Sequence")
        if sequence is None or not _SEQUENCE.fullmatch(sequence):
            return 30006
        return 0

    def _next_fault_locked(self, stream_ids: tuple[str, ...]) -> Fault | None:
        for stream_id in stream_ids:
            targeted = self._stream_faults.get(stream_id)
            if targeted is None:
                continue
            fault, times = targeted
            if times is None:
                return fault
            if times > 1:
                self._stream_faults[stream_id] = (fault, times - 1)
            else:
                del self._stream_faults[stream_id]
            return fault
        if self._queued_faults:
            return self._queued_faults.popleft()
        if self._fault_probability > 0 and self._rng.random() < self._fault_probability:
            return self._rng.choice(self._random_faults)
        return None

    def _apply_locked(
        self, action: str, stream_ids: tuple[str, ...], sequence_text: str, arrival: float
    ) -> tuple[bool, tuple[str, ...]]:
        """Step 11. Returns (some stream was stale, the streams applied)."""
        sequence = int(sequence_text)
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
        state = _ACTIONS[action]
        for stream_id in fresh:
            self._states[stream_id] = (state, sequence)
            self._last_applied[stream_id] = (sequence, arrival)
        return bool(stale), tuple(fresh)

    # ----- the admin API ---------------------------------------------------------------------

    def _handle_admin(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        name = path[len(_ADMIN_PREFIX) :]
        if method == "GET" and name == "state":
            return 200, self.state_summary()
        if method != "POST" or name not in {"faults", "latency", "secret", "reset"}:
            return 404, {"error": "not found"}
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            if name == "faults":
                self._admin_faults(data)
            elif name == "latency":
                seconds = data.get("seconds")
                if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
                    raise ValueError("seconds must be a number")
                self.set_latency(float(seconds))
            elif name == "secret":
                secret = data.get("serverSecret")
                if not isinstance(secret, str) or not secret:
                    raise ValueError("serverSecret must be a non-empty string")
                self.rotate_secret(secret)
            else:
                self.reset()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return 400, {"error": "invalid JSON"}
        except ValueError as err:
            # Our messages name fields only, never their values, so a secret cannot leak here.
            return 400, {"error": str(err)}
        return 200, {"ok": True}

    def _admin_faults(self, data: dict[str, Any]) -> None:
        if data.get("clear"):
            self.clear_faults()
        if "next" in data:
            if not isinstance(data["next"], list):
                raise ValueError("next must be a list of faults")
            self.inject(*(Fault.from_json(f) for f in data["next"]))
        if "random" in data:
            if not isinstance(data["random"], list):
                raise ValueError("random must be a list of faults")
            probability = data.get("probability", 0.0)
            seed = data.get("seed", 0)
            if isinstance(probability, bool) or not isinstance(probability, (int, float)):
                raise ValueError("probability must be a number")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError("seed must be an integer")
            self.inject_randomly([Fault.from_json(f) for f in data["random"]], float(probability), seed)
        if not {"clear", "next", "random"} & set(data):
            raise ValueError("expected one of next, random, clear")


def _first(params: dict[str, list[str]], name: str) -> str | None:
    # A repeated common parameter: the first one counts.
    values = params.get(name)
    return values[0] if values else None


def _was_applied(call: CallRecord) -> bool:
    return call.code == 0 and call.fault is None and bool(call.applied_stream_ids)


def _zego_body(code: int, request_id: str) -> bytes:
    message = _MESSAGES.get(code, "error")
    return json.dumps({"Code": code, "Message": message, "RequestId": request_id, "Data": None}).encode()


def _json_answer(sleep: float, status: int, body: bytes) -> _Answer:
    return _Answer(sleep=sleep, status=status, body=body)


def _plain_answer(sleep: float, status: int) -> _Answer:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{int(status)} {phrase}\n".encode()
    return _Answer(sleep=sleep, status=status, body=body, content_type="text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Otherwise server_close() waits for every thread, including idle keep-alive connections.
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        emulator: ZegoEmulator,
    ) -> None:
        self.emulator = emulator
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or go away mid-answer are normal here; stay quiet about them.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # includes ConnectionError and TimeoutError
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse one connection
    server_version = "zegosim"
    sys_version = ""
    # Headers and body are separate writes; without this, Nagle + delayed ACK add ~40 ms per call.
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection frees its thread after this long

    @property
    def emulator(self) -> ZegoEmulator:
        return cast(_Server, self.server).emulator

    def setup(self) -> None:
        super().setup()
        self.emulator._connection_opened(self.connection)

    def finish(self) -> None:
        self.emulator._connection_closed(self.connection)
        with contextlib.suppress(OSError):  # the client may already be gone
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # No access log: request lines carry the signature.
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        if parts.path.startswith(_ADMIN_PREFIX):
            status, doc = self.emulator._handle_admin(method, parts.path, body)
            self._write(_json_answer(0.0, status, json.dumps(doc).encode()))
        elif parts.path in ("", "/") and method == "GET":
            self._write(self.emulator._handle_api(parts.query))
        elif parts.path in ("", "/"):
            self._write(_json_answer(0.0, 405, b'{"error": "method not allowed"}'))
        else:
            self._write(_json_answer(0.0, 404, b'{"error": "not found"}'))

    def _read_body(self) -> bytes:
        # Read any body so the next request on a keep-alive connection starts where it should.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        if length > _MAX_ADMIN_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _write(self, answer: _Answer) -> None:
        if answer.sleep > 0:
            time.sleep(answer.sleep)  # outside the emulator's lock: other connections go on
        if answer.drop:
            # Write nothing; the server closes the socket and the client sees a dropped connection.
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator in the foreground until Ctrl-C or SIGTERM."""
    # Not __doc__: it is None under python -OO.
    summary = "Run a local stand-in for ZEGOCLOUD's Server API until Ctrl-C or SIGTERM."
    parser = argparse.ArgumentParser(prog="python -m zegosim.zego", description=summary)
    parser.add_argument("--app-id", type=int, required=True)
    parser.add_argument(
        "--server-secret",
        default=os.environ.get("ZEGO_SERVER_SECRET"),
        help="defaults to $ZEGO_SERVER_SECRET",
    )
    parser.add_argument("--port", type=int, default=8787)
    parser.add_argument("--test", action="store_true", help="a test-environment AppId (IsTest=true)")
    parser.add_argument("--rate-limit", type=int, help="calls a second (default 20, 5 with --test)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--stale-code", type=int, help="answer stale Sequences with this Code")
    args = parser.parse_args(argv)
    if not args.server_secret:
        parser.error("--server-secret or ZEGO_SERVER_SECRET is required")

    try:
        emulator = ZegoEmulator(
            args.app_id,
            args.server_secret,
            is_test=args.test,
            rate_limit=args.rate_limit,
            latency=args.latency,
            stale_code=args.stale_code,
            port=args.port,
        )
    except ValueError as err:  # the messages name the argument, never the secret
        parser.error(str(err))
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(emulator.start(), flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
