"""The HTTP side of the emulator: a threaded server, its request handler, and the admin API.

Every sleep of the emulator happens here, in the connection's own thread and outside the
emulator's lock, so other connections go on: the connection set-up delay (before a new
connection's first request is read), the network jitter (before an API call reaches the
rules), and the answer latency plus any fault delay (before the answer is written). See
``docs/emulator.md`` (The admin API) for the endpoints.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from .faults import Fault
from .rules import Decision

ADMIN_PREFIX = "/_emulator/"
MAX_ADMIN_BODY = 64 * 1024
# What a load balancer in front of an API typically returns when its upstream fails.
# Linux's SO_TIMESTAMPNS (the socket module does not name it): the kernel stamps each segment
# with the time it was received, so a call counts where it reached the host, not where a thread
# of ours, on a busy machine, got round to reading it.
SO_TIMESTAMPNS = 35 if sys.platform == "linux" else None
HTML_ERROR_PAGE = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"


class EmulatorBackend(Protocol):
    """What the server needs from ``ZegoEmulator``; every method is thread-safe there."""

    @property
    def admin_token(self) -> str: ...

    def connection_opened(self) -> float: ...

    def draw_network_delay(self) -> float: ...

    def receive_api_call(
        self,
        query: str,
        *,
        jitter: float = 0.0,
        connection_setup_delay: float = 0.0,
        arrival: float | None = None,
    ) -> tuple[Decision, float]: ...

    def state_summary(self) -> dict[str, Any]: ...

    def inject(self, *faults: Fault) -> None: ...

    def inject_randomly(self, faults: Sequence[Fault], probability: float, seed: int = 0) -> None: ...

    def clear_faults(self) -> None: ...

    def set_latency(self, seconds: float) -> None: ...

    def set_network_jitter(self, seconds: float, seed: int | None = None) -> None: ...

    def set_connection_setup_delay(self, seconds: float) -> None: ...

    def rotate_secret(self, new_secret: str) -> None: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class HttpAnswer:
    """What the handler writes, after sleeping ``sleep`` seconds."""

    sleep: float
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False
    headers: tuple[tuple[str, str], ...] = ()


def answer_for(decision: Decision, latency: float) -> HttpAnswer:
    """How a judged call is answered on the wire: ZEGO's JSON document, or what its fault says."""
    record = decision.record
    fault = record.fault
    sleep = latency + (fault.delay if fault else 0.0)
    if fault is not None:
        if fault.drop:
            # Write nothing; the server closes the socket and the client sees a dropped connection.
            return HttpAnswer(sleep=sleep, drop=True)
        if fault.http_status is not None:
            return plain_answer(sleep, fault.http_status)
        if fault.non_json:
            return HttpAnswer(sleep=sleep, body=HTML_ERROR_PAGE, content_type="text/html")
    if record.code is None:  # a delay that applied nothing: an upstream timeout
        return plain_answer(sleep, HTTPStatus.GATEWAY_TIMEOUT)
    document = {"Code": record.code, "Message": decision.message, "RequestId": record.request_id}
    return json_answer(200, {**document, "Data": None}, sleep=sleep)


def json_answer(status: int, document: dict[str, Any], *, sleep: float = 0.0) -> HttpAnswer:
    return HttpAnswer(sleep=sleep, status=status, body=json.dumps(document).encode())


def plain_answer(sleep: float, status: int) -> HttpAnswer:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = f"{int(status)} {phrase}\n".encode()
    return HttpAnswer(sleep=sleep, status=status, body=body, content_type="text/plain")


# ----- the admin API ---------------------------------------------------------------------------

_ADMIN_POSTS = {"faults", "latency", "jitter", "connection-setup", "secret", "reset"}
_UNAUTHORISED = HttpAnswer(
    sleep=0.0,
    status=401,
    body=b'{"error": "unauthorized: send Authorization: Bearer <admin token>"}',
    headers=(("WWW-Authenticate", 'Bearer realm="zegosim"'),),
)


def is_authorised(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>``, compared in constant time."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    # Compare whatever came, so a wrong scheme costs the same as a wrong token.
    matches = hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())
    return matches and scheme.lower() == "bearer"


def handle_admin(
    backend: EmulatorBackend, method: str, path: str, authorization: str | None, body: bytes
) -> HttpAnswer:
    """Answer one admin request. Error messages name fields only, never values, so neither the
    secret nor the token can leak through them."""
    if not is_authorised(authorization, backend.admin_token):
        return _UNAUTHORISED
    name = path[len(ADMIN_PREFIX) :]
    if method == "GET" and name == "state":
        return json_answer(200, backend.state_summary())
    if method != "POST" or name not in _ADMIN_POSTS:
        return json_answer(404, {"error": "not found"})
    try:
        data = json.loads(body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        _admin_post(backend, name, data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return json_answer(400, {"error": "invalid JSON"})
    except ValueError as err:
        return json_answer(400, {"error": str(err)})
    return json_answer(200, {"ok": True})


def _admin_post(backend: EmulatorBackend, name: str, data: dict[str, Any]) -> None:
    if name == "faults":
        _admin_faults(backend, data)
    elif name == "latency":
        backend.set_latency(_number(data, "seconds"))
    elif name == "jitter":
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        backend.set_network_jitter(_number(data, "seconds"), seed)
    elif name == "connection-setup":
        backend.set_connection_setup_delay(_number(data, "seconds"))
    elif name == "secret":
        secret = data.get("serverSecret")
        if not isinstance(secret, str) or not secret:
            raise ValueError("serverSecret must be a non-empty string")
        backend.rotate_secret(secret)
    else:
        backend.reset()


def _number(data: dict[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    return float(value)


def _admin_faults(backend: EmulatorBackend, data: dict[str, Any]) -> None:
    if not {"clear", "next", "random"} & set(data):
        raise ValueError("expected one of next, random, clear")
    # Parse everything before changing anything: a bad fault leaves the plan as it was.
    queued: list[Fault] | None = None
    random_faults: list[Fault] | None = None
    if "next" in data:
        if not isinstance(data["next"], list):
            raise ValueError("next must be a list of faults")
        queued = [Fault.from_json(f) for f in data["next"]]
    if "random" in data:
        if not isinstance(data["random"], list):
            raise ValueError("random must be a list of faults")
        random_faults = [Fault.from_json(f) for f in data["random"]]
        probability = data.get("probability", 0.0)
        seed = data.get("seed", 0)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)):
            raise ValueError("probability must be a number")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an integer")
    if data.get("clear"):
        backend.clear_faults()
    if queued is not None:
        backend.inject(*queued)
    if random_faults is not None:
        backend.inject_randomly(random_faults, float(probability), seed)


# ----- the server --------------------------------------------------------------------------------


class EmulatorServer:
    """A ``ThreadingHTTPServer`` bound to (host, port) at construction (OSError when it cannot
    listen there), serving one backend until ``stop``."""

    def __init__(self, backend: EmulatorBackend, host: str, port: int) -> None:
        self._server = _ThreadingServer((host, port), _Handler, backend)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def serve_in_background(self) -> None:
        # A short poll interval keeps stop() fast; the cost is a few idle wake-ups a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="zego-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, and shut every open connection (keep-alive ones would go on being
        served otherwise)."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        self._server.close_open_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    # Otherwise server_close() waits for every thread, including idle keep-alive connections.
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        backend: EmulatorBackend,
    ) -> None:
        self.backend = backend
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        if SO_TIMESTAMPNS is not None:
            with contextlib.suppress(OSError):  # accepted connections inherit it
                self.socket.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        super().server_bind()

    def track(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(sock)

    def close_open_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
    _setup_delay = 0.0  # what this connection's first request waited, until it is handed on
    _ready_at = 0.0  # when the emulated handshake ended

    @property
    def _server(self) -> _ThreadingServer:
        return cast(_ThreadingServer, self.server)

    def setup(self) -> None:
        super().setup()
        self._reader = _StampedReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self._server.track(self.connection)
        self._setup_delay = self._server.backend.connection_opened()

    def handle(self) -> None:
        if self._setup_delay > 0:
            # What a TLS handshake with a far host costs: nothing is read until it is over, and
            # no request can arrive before it is. (Without one, a thread that starts late must
            # not make its first request look late: the kernel's receive stamp says when.)
            time.sleep(self._setup_delay)
            self._ready_at = time.monotonic()
        super().handle()

    def handle_one_request(self) -> None:
        self._reader.mark()
        super().handle_one_request()

    def finish(self) -> None:
        self._server.untrack(self.connection)
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
        setup_delay, self._setup_delay = self._setup_delay, 0.0  # only the first request paid it
        parts = urlsplit(self.path)
        backend = self._server.backend
        if parts.path.startswith(ADMIN_PREFIX):
            authorization = self.headers.get("Authorization")
            self._write(handle_admin(backend, method, parts.path, authorization, body))
        elif parts.path in ("", "/") and method == "GET":
            read_at = max(self._reader.received_at(), self._ready_at)
            jitter = backend.draw_network_delay()
            if jitter > 0:
                # Before the call reaches the rules: calls may overtake each other. It arrives
                # exactly `jitter` after it reached this host; a thread that wakes late from
                # this sleep must not make the network look slower than the knob says.
                time.sleep(max(0.0, read_at + jitter - time.monotonic()))
            decision, latency = backend.receive_api_call(
                parts.query, jitter=jitter, connection_setup_delay=setup_delay, arrival=read_at + jitter
            )
            self._write(answer_for(decision, latency))
        elif parts.path in ("", "/"):
            self._write(json_answer(405, {"error": "method not allowed"}))
        else:
            self._write(json_answer(404, {"error": "not found"}))

    def _read_body(self) -> bytes:
        # Read any body so the next request on a keep-alive connection starts where it should.
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length <= 0:
            return b""
        if length > MAX_ADMIN_BODY:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _write(self, answer: HttpAnswer) -> None:
        if answer.sleep > 0:
            time.sleep(answer.sleep)  # outside the emulator's lock: other connections go on
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


class _StampedReader(io.RawIOBase):
    """A connection's raw input that remembers when a request's first bytes reached the host:
    the kernel's receive time where Linux gives one (SO_TIMESTAMPNS), else when they were read."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._first: float | None = None  # since mark(): the first read's time
        self._last = time.monotonic()  # the latest read's time

    def readable(self) -> bool:
        return True

    def mark(self) -> None:
        """A new request starts: what is read from now on is its own."""
        self._first = None

    def received_at(self) -> float:
        """When this request's first bytes arrived (a time.monotonic() value). A request that
        came in the same read as the previous one arrived with it."""
        return self._last if self._first is None else self._first

    def readinto(self, buffer: Any) -> int:
        size, ancillary, _flags, _address = self._sock.recvmsg_into([buffer], socket.CMSG_SPACE(16))
        received = time.monotonic()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack("qq", data[:16])
                received = _monotonic_of(seconds + nanoseconds / 1e9)
        if self._first is None:
            self._first = received
        self._last = received
        return size


def _monotonic_of(wall: float) -> float:
    """The time.monotonic() value of a wall-clock time (the kernel stamps in wall-clock time; the
    rules count in monotonic time). The two clocks are read as a tight pair: a thread that loses
    the CPU between them would move the stamp by as long as it waited, and bunch calls up."""
    for _ in range(10):
        before = time.monotonic()
        now = time.time()
        after = time.monotonic()
        if after - before < 0.0002:
            break
    return wall - now + (before + after) / 2
