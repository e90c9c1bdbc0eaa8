"""Adapter: signed ResumeRTCStreams calls over one keep-alive requests.Session.

The signed URL, the signature and the secret never leave this module: errors carry a name and a
short message of our own, never the text of a requests exception (which quotes the URL).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence

import requests
from requests.adapters import HTTPAdapter

from .ports import TransportError, ZegoAnswer, ZegoCredentials
from .request import MAX_STREAM_ID_LENGTH, STREAM_ID_PATTERN

ACTION = "ResumeRTCStreams"
SIGNATURE_VERSION = "2.0"
CONNECT_TIMEOUT_SECONDS = 1.5
MAX_MESSAGE_LENGTH = 200  # ZEGO's Message is logged and dead-lettered: keep it short


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
        self._session = session or requests.Session()
        # No proxies, .netrc or CA bundle from the environment: with trust_env on, every request
        # scans os.environ and stats ~/.netrc, which costs more CPU than the call itself does.
        self._session.trust_env = False
        # Retries belong to the domain (each attempt is re-signed), so the adapter makes none;
        # the pool is as large as the number of calls that run in parallel.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)

    def resume(
        self,
        credentials: ZegoCredentials,
        stream_ids: Sequence[str],
        sequence: int,
        *,
        time_left: float,
    ) -> ZegoAnswer:
        """One signed call with a fresh nonce and timestamp; timeouts never outlive `time_left`.

        Raises TransportError (Timeout, ConnectionError, HttpError, InvalidResponse): retry
        with back-off. A ZegoAnswer with a non-zero Code is returned, not raised.
        """
        query = build_query(
            credentials,
            stream_ids,
            sequence,
            is_test=self._is_test,
            nonce=new_nonce(),
            timestamp=int(self._clock()),
        )
        budget = max(time_left, 0.05)
        timeout = (min(CONNECT_TIMEOUT_SECONDS, budget), min(self._read_timeout, budget))
        # The error is raised outside the `except` blocks: raised inside, even `from None` keeps
        # the requests exception as __context__, and its text is the signed URL.
        failure: TransportError | None = None
        try:
            response = self._session.get(f"{self._url}?{encode_query(query)}", timeout=timeout)
        except requests.Timeout:
            failure = TransportError("Timeout", f"no answer from ZEGO within {timeout[1]:.1f}s")
        except requests.RequestException as error:
            failure = TransportError("ConnectionError", f"{type(error).__name__} calling ZEGO")
        if failure is not None:
            raise failure
        return parse_answer(response.status_code, response.content)


def parse_answer(status: int, content: bytes) -> ZegoAnswer:
    """ZEGO's JSON answer. Raises TransportError (HttpError, InvalidResponse): retry later."""
    if not 200 <= status < 300:
        raise TransportError("HttpError", f"ZEGO answered HTTP {status}")
    try:
        body = json.loads(content)
    except ValueError:
        raise TransportError("InvalidResponse", "ZEGO answered a body that is not JSON") from None
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
