"""Adapter: signed ResumeRTCStreams calls over one keep-alive requests.Session.

Three things here go beyond a plain `session.get`, each for a promise the function makes:

* **A call's start is the moment its request is written.** The connection classes below open
  the connection first (TCP, TLS) and only then take the call's rate-limit turn, right before the
  request line goes out. A new connection's set-up therefore never makes a call reach ZEGO later
  than its turn, and the turn is measured where ZEGO will count it (docs/design.md, "Rate
  limiting").
* **A call ends by its deadline, body included.** Socket timeouts apply per read, so a server
  trickling a byte at a time could hold a call for ever; a watchdog thread shuts the socket down
  when the call's time is up.
* **The first connection is opened ahead of the first call** (`prepare`), so that its set-up
  overlaps the secret's loading: with ZEGO far away, the handshakes are a cold start's longest
  wait.
* **The signature never leaves for another host.** No redirect is followed (a 3xx is a transient
  HttpError), nothing is read from the environment (proxies, .netrc), the answer's size is
  capped, and errors carry a name and a short message of our own, never the text of a requests
  exception (which quotes the signed URL).
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import secrets
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from zego_resume.domain.request import MAX_STREAM_ID_LENGTH, STREAM_ID_PATTERN
from zego_resume.ports import NoTurnBeforeDeadline, TransportError, Turn, ZegoAnswer, ZegoCredentials

ACTION = "ResumeRTCStreams"
SIGNATURE_VERSION = "2.0"
CONNECT_TIMEOUT_SECONDS = 1.5
MAX_MESSAGE_LENGTH = 200  # ZEGO's Message is logged and dead-lettered: keep it short
MAX_ANSWER_BYTES = 64 * 1024  # ZEGO answers ~100 bytes of JSON; anything this big is not ZEGO


def sign(app_id: int, nonce: str, server_secret: str, timestamp: int) -> str:
    """ZEGO signature version 2.0: md5 over AppId, nonce, secret and timestamp, concatenated."""
    material = f"{app_id}{nonce}{server_secret}{timestamp}".encode()
    return hashlib.md5(material, usedforsecurity=False).hexdigest()


def new_nonce() -> str:
    """16 hex characters from 8 random bytes, new for every attempt."""
    return secrets.token_hex(8)


def encode_query(query: Sequence[tuple[str, str]]) -> str:
    """The query string of `query`. Every value is already URL-safe by construction (stream ids
    are checked against ZEGO's charset, the rest are digits, hex and fixed words), so only the
    bracket of `StreamId[]` needs encoding; `urlencode` would quote each of the ~30 values of a
    call for nothing."""
    return "&".join(f"{_ENCODED_NAMES.get(name, name)}={value}" for name, value in query)


_ENCODED_NAMES = {"StreamId[]": "StreamId%5B%5D"}


def build_query(
    credentials: ZegoCredentials,
    stream_ids: Sequence[str],
    sequence: int,
    *,
    is_test: bool,
    nonce: str,
    timestamp: int,
) -> list[tuple[str, str]]:
    """The query parameters of one signed call, in ZEGO's order.

    Raises ValueError for a stream id outside ZEGO's charset (a bug upstream: ids are validated
    long before they get here); do not retry.
    """
    if not 1 <= len(stream_ids) <= 20:
        raise ValueError(f"a call takes 1..20 stream ids, not {len(stream_ids)}")
    for stream_id in stream_ids:
        if len(stream_id) > MAX_STREAM_ID_LENGTH or not STREAM_ID_PATTERN.fullmatch(stream_id):
            raise ValueError("a stream id outside ZEGO's charset reached the URL builder")
    query = [
        ("Action", ACTION),
        ("AppId", str(credentials.app_id)),
        ("SignatureNonce", nonce),
        ("Timestamp", str(timestamp)),
        ("Signature", sign(credentials.app_id, nonce, credentials.server_secret, timestamp)),
        ("SignatureVersion", SIGNATURE_VERSION),
    ]
    if is_test:
        query.append(("IsTest", "true"))
    query.extend(("StreamId[]", stream_id) for stream_id in stream_ids)
    query.append(("Sequence", str(sequence)))
    return query


class ZegoClient:
    """ZegoGateway over HTTPS. One instance per execution environment: its Session keeps
    connections to ZEGO alive across invocations."""

    def __init__(
        self,
        base_url: str,
        *,
        is_test: bool = False,
        read_timeout: float = 3.0,
        pool_size: int = 20,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = base_url.rstrip("/") + "/"
        self._is_test = is_test
        self._read_timeout = read_timeout
        self._clock = clock
        self._watchdog = _Watchdog()
        self._session = session or requests.Session()
        # No proxies, .netrc or CA bundle from the environment: with trust_env on, every request
        # scans os.environ and stats ~/.netrc, which costs more CPU than the call itself does,
        # and a proxy variable would send the signed URL through a host of someone's choosing.
        self._session.trust_env = False
        # An answer is a few bytes of JSON: compression would only give a decompression bomb a
        # way in past the size cap.
        self._session.headers["Accept-Encoding"] = "identity"
        # Retries belong to the domain (each attempt is re-signed), so the adapter makes none;
        # the pool is as large as the number of calls that run in parallel.
        adapter = _TurnTakingAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._preparing: threading.Thread | None = None

    def prepare(self) -> None:
        """Open a connection to ZEGO on a thread of its own and leave it in the pool, so that its
        set-up (TCP and TLS handshakes) runs while the environment loads the secret instead of
        after it. The first call waits for it rather than opening a second connection. Nothing is
        sent, so ZEGO counts no call; a failure is left for the call to meet and report."""
        self._preparing = threading.Thread(target=self._open_connection, name="zego-connect", daemon=True)
        self._preparing.start()

    def _open_connection(self) -> None:
        with contextlib.suppress(Exception):  # the call will meet the same failure and report it
            request = requests.Request("GET", self._url).prepare()
            adapter = self._session.get_adapter(self._url)
            if not isinstance(adapter, HTTPAdapter):
                return
            pool = adapter.get_connection_with_tls_context(request, verify=self._session.verify, cert=None)
            if not isinstance(pool, HTTPConnectionPool):
                return
            # urllib3 has no public way to open a connection before its request: take a slot
            # of the pool, connect it and hand it back, as urllib3's own urlopen does around a
            # request. The next call then finds it open (and urllib3 replaces it if ZEGO has
            # closed it meanwhile).
            connection = pool._get_conn()
            try:
                connection.timeout = CONNECT_TIMEOUT_SECONDS
                connection.connect()
            except Exception:
                connection.close()
                raise
            finally:
                pool._put_conn(connection)

    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        deadline: float,
        turn: Turn,
    ) -> ZegoAnswer:
        """One signed call with a fresh nonce and timestamp, `turn` taken once the connection is
        open, the whole call (answer included) over by `deadline` (time.monotonic()).

        Raises NoTurnBeforeDeadline (nothing was sent: stop), TransportError (Timeout,
        ConnectionError, HttpError, InvalidResponse: retry with back-off). A ZegoAnswer with a
        non-zero Code is returned, not raised.
        """
        query = build_query(
            credentials,
            stream_ids,
            sequence,
            is_test=self._is_test,
            nonce=new_nonce(),
            timestamp=int(self._clock()),
        )
        preparing, self._preparing = self._preparing, None
        if preparing is not None:  # the first call: its connection is being opened already
            preparing.join(max(0.0, min(CONNECT_TIMEOUT_SECONDS, deadline - time.monotonic())))
        guard = _CallGuard(turn, deadline, self._read_timeout, self._watchdog)
        budget = max(deadline - time.monotonic(), 0.05)
        timeout = (min(CONNECT_TIMEOUT_SECONDS, budget), min(self._read_timeout, budget))
        # The error is raised outside the `except` blocks: raised inside, even `from None` keeps
        # the requests exception as __context__, and its text is the signed URL.
        failure: TransportError | None = None
        status, content = 0, b""
        _current.guard = guard
        try:
            response = self._session.get(
                f"{self._url}?{encode_query(query)}",
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
            with contextlib.closing(response):
                status = response.status_code
                content = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=False)
        except _NoTurn:
            failure = NoTurnBeforeDeadline()
        except Exception as error:  # requests, urllib3, ssl and socket raise many types: all transient
            failure = _transport_failure(error, guard, self._read_timeout)
        finally:
            _current.guard = None
            guard.finish()
        if failure is not None:
            raise failure
        if len(content) > MAX_ANSWER_BYTES:
            raise TransportError("InvalidResponse", f"ZEGO's answer is larger than {MAX_ANSWER_BYTES} bytes")
        return parse_answer(status, content)


def parse_answer(status: int, content: bytes) -> ZegoAnswer:
    """ZEGO's JSON answer. Raises TransportError (HttpError, InvalidResponse): retry later."""
    if not 200 <= status < 300:
        # A 3xx lands here too: a redirect is never followed, the signed URL stays with ZEGO.
        raise TransportError("HttpError", f"ZEGO answered HTTP {status}")
    body = _json_or_none(content)
    if body is None:
        raise TransportError("InvalidResponse", "ZEGO answered a body that is not JSON")
    code = body.get("Code") if isinstance(body, dict) else None
    if isinstance(code, bool) or not isinstance(code, int):
        raise TransportError("InvalidResponse", "ZEGO's answer has no integer Code")
    message = body.get("Message")
    request_id = body.get("RequestId")
    return ZegoAnswer(
        code=code,
        message=str(message)[:MAX_MESSAGE_LENGTH] if message is not None else "",
        request_id=str(request_id)[:MAX_MESSAGE_LENGTH] if request_id else None,
    )


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # RecursionError: a body of deeply nested brackets
        return None


def _transport_failure(error: Exception, guard: _CallGuard, read_timeout: float) -> TransportError:
    if guard.cut_off:
        return TransportError("Timeout", "ZEGO's answer did not arrive before the call's deadline")
    if isinstance(error, requests.Timeout):
        return TransportError("Timeout", f"no answer from ZEGO within {read_timeout:.1f}s")
    return TransportError("ConnectionError", f"{type(error).__name__} calling ZEGO")


# ----- taking the turn where the request is written ------------------------------------------

_current = threading.local()  # the _CallGuard of the call this thread is making


class _NoTurn(Exception):
    """No turn before the deadline: raised inside urllib3, turned into NoTurnBeforeDeadline."""


class _CallGuard:
    """One call's turn and deadline, handed to the connection that writes it."""

    def __init__(
        self,
        turn: Turn,
        deadline: float,
        read_timeout: float,
        watchdog: _Watchdog,
    ) -> None:
        self._turn = turn
        self._deadline = deadline
        self._read_timeout = read_timeout
        self._watchdog = watchdog
        self._watch: _Watch | None = None
        self._started = False

    @property
    def started(self) -> bool:
        return self._started

    def send(self, sock: socket.socket | None, data: bytes) -> None:
        """Take the turn, write `data` at once, say when it left, then watch the socket for the
        answer."""
        self._started = True
        if sock is not None:
            _send_stamps.prepare(sock)
        if not self._turn():
            raise _NoTurn
        if sock is None:
            self._turn.written(None)
            return
        sock.sendall(data)  # the call's start: nothing of ours runs between the turn and here
        self._turn.written(_send_stamps.read(sock))
        ends = min(self._deadline, time.monotonic() + self._read_timeout)
        self._watch = self._watchdog.watch(sock, ends)

    @property
    def cut_off(self) -> bool:
        return self._watch is not None and self._watch.fired

    def finish(self) -> None:
        if self._watch is not None:
            self._watchdog.release(self._watch)


def send_in_turn(sock: socket.socket | None, data: bytes) -> bool:
    """How a connection writes a call's request once it is open: take the call's turn (raising
    _NoTurn when there is none before the deadline), write, report the write, and set the
    watchdog on the socket. False (nothing done) outside ZegoClient.resume or after the call's
    first write."""
    guard: _CallGuard | None = getattr(_current, "guard", None)
    if guard is None or guard.started:
        return False
    guard.send(sock, data)
    return True


class _TurnTaking:
    """Mixed into urllib3's connections: connect first, then take the turn as the request is
    written (http.client writes a GET's request line and headers in one send)."""

    sock: socket.socket | None
    if TYPE_CHECKING:  # provided by the urllib3 connection this is mixed into

        def connect(self) -> None: ...

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> None:
        if getattr(_current, "guard", None) is not None and self.sock is None:
            self.connect()  # set-up first: it must not make the call late for its turn
        super().request(method, url, *args, **kwargs)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        if isinstance(data, bytes) and self.sock is not None:
            sys.audit("http.client.send", self, data)
            if send_in_turn(self.sock, data):
                return
        super().send(data)  # type: ignore[misc]


class _TurnTakingHTTPConnection(_TurnTaking, HTTPConnection):
    pass


class _TurnTakingHTTPSConnection(_TurnTaking, HTTPSConnection):
    pass


class _TurnTakingHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TurnTakingHTTPConnection


class _TurnTakingHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TurnTakingHTTPSConnection


class _TurnTakingAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _TurnTakingHTTPPool,
            "https": _TurnTakingHTTPSPool,
        }


# ----- when a request left ---------------------------------------------------------------------


class _SendStamps:
    """When a request really left: Linux stamps each write as it goes out (SO_TIMESTAMPING,
    software transmit stamps, delivered on the socket's error queue without the data). Our own
    clock read after `sendall` returns would add however long the thread then waited for the GIL,
    and the rate budget would take that wait for a late write. None where there is no stamp (other
    systems, a socket that refuses the option): the budget then takes its own clock, the safe side.

    Written here: neither requests nor urllib3 exposes the socket's transmit time."""

    SO_TIMESTAMPING = 37  # Linux; the socket module does not name it
    FLAGS = (1 << 1) | (1 << 4) | (1 << 11)  # TX_SOFTWARE | SOFTWARE | OPT_TSONLY
    ANCILLARY_BYTES = 512

    def __init__(self) -> None:
        self._enabled = sys.platform == "linux"

    def prepare(self, sock: socket.socket) -> None:
        """Ask for stamps (once per socket is enough; asking again costs ~1 µs) and drop any left
        from an earlier request on this connection."""
        if not self._enabled:
            return
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, self.SO_TIMESTAMPING, self.FLAGS)
            while self._next(sock) is not None:
                pass

    def read(self, sock: socket.socket) -> float | None:
        """The time (time.time()) the last write on `sock` went out, if the kernel said."""
        if not self._enabled:
            return None
        latest: float | None = None
        with contextlib.suppress(OSError):
            while (stamp := self._next(sock)) is not None:
                latest = stamp if latest is None else max(latest, stamp)
        return latest if latest is not None and latest > 0 else None

    def _next(self, sock: socket.socket) -> float | None:
        # The error queue of the socket's file descriptor; an SSL socket refuses recvmsg, so a
        # plain socket object is put over the same descriptor (no dup) and detached again.
        raw = socket.socket(fileno=sock.fileno())
        try:
            _data, ancillary, _flags, _address = raw.recvmsg(
                0, self.ANCILLARY_BYTES, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT
            )
        except BlockingIOError:
            return None
        finally:
            raw.detach()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == self.SO_TIMESTAMPING and len(payload) >= 16:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                return float(seconds + nanoseconds / 1e9)
        return float("-inf")  # a notice without a stamp: keep reading


_send_stamps = _SendStamps()


# ----- the watchdog ----------------------------------------------------------------------------


class _Watch:
    __slots__ = ("ends", "fired", "released", "sock")

    def __init__(self, sock: socket.socket, ends: float) -> None:
        self.sock = sock
        self.ends = ends
        self.fired = False
        self.released = False


class _Watchdog:
    """One thread per client that shuts down the socket of a call whose time is up.

    Written here because no library offers a deadline for a whole HTTP exchange: requests and
    urllib3 time each socket read, which a server trickling bytes never lets expire. One thread
    with a heap of deadlines costs a lock and a heap push per call; a timer per call would cost a
    thread per call.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, sock: socket.socket, ends: float) -> _Watch:
        watch = _Watch(sock, ends)
        with self._lock:
            heapq.heappush(self._heap, (ends, next(self._counter), watch))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="zego-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is watch:
                self._lock.notify()
        return watch

    def release(self, watch: _Watch) -> None:
        with self._lock:
            watch.released = True  # left in the heap: dropped when the thread next wakes up

    def _run(self) -> None:
        while True:
            with self._lock:
                # Finished calls need no deadline: drop those first in line at once, and sleep
                # until the first deadline of a call still running. Waking up for each finished
                # call's deadline cost a wake-up per call (CPU per call, not seconds).
                while self._heap and self._heap[0][2].released:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                ends, _, watch = self._heap[0]
                now = time.monotonic()
                if ends > now:
                    self._lock.wait(ends - now)
                    continue
                heapq.heappop(self._heap)
                watch.fired = True
            with contextlib.suppress(OSError):  # already closed by its owner: nothing to cut
                watch.sock.shutdown(socket.SHUT_RDWR)
