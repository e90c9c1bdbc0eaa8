"""Small servers on loopback that misbehave as a network or a host in the middle might: they
redirect, send malformed headers, or trickle an answer a byte at a time. Raw sockets, so that every
byte on the wire is the test's choice. Each records the request lines it received."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

Respond = Callable[[socket.socket, bytes], None]


class RawServer:
    """Accepts connections on 127.0.0.1, reads one request head per connection, and lets
    `respond` write whatever it likes. Stopped (and every connection closed) on exit."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._connections: list[socket.socket] = []
        self.requests: list[str] = []  # request lines, e.g. "GET /?Action=... HTTP/1.1"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._connections.append(connection)
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):
            connection.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = connection.recv(4096)
                if not chunk:
                    return
                head += chunk
            self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            self._respond(connection, head)


def redirect_to(location: str) -> Respond:
    """Answer every request with 307 to `location` (which may be malformed)."""

    def respond(connection: socket.socket, head: bytes) -> None:
        connection.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: "
            + location.encode("latin-1")
            + b"\r\nContent-Length: 0\r\n\r\n"
        )

    return respond


def zego_success() -> Respond:
    """Answer like ZEGO accepting the call (what a host that stole the signature might say)."""

    def respond(connection: socket.socket, head: bytes) -> None:
        body = b'{"Code": 0, "Message": "success", "RequestId": "not-zego", "Data": null}'
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )

    return respond


def malformed_headers() -> Respond:
    """A 200 whose header block holds a line without a colon: http.client records a defect, and
    urllib3 warns "Failed to parse headers (url=...)" with the full request URL."""

    def respond(connection: socket.socket, head: bytes) -> None:
        body = b'{"Code": 0, "Message": "success", "RequestId": "r", "Data": null}'
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nthis line has no colon\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )

    return respond


def trickle(interval: float, stop: threading.Event) -> Respond:
    """An answer that never ends: one byte of the status line every `interval` seconds, each
    well within any per-read timeout."""

    def respond(connection: socket.socket, head: bytes) -> None:
        for byte in iter(lambda: b"H", None):
            if stop.is_set():
                return
            connection.sendall(byte)
            time.sleep(interval)

    return respond


@contextlib.contextmanager
def serving(respond: Respond) -> Iterator[RawServer]:
    with RawServer(respond) as server:
        yield server
