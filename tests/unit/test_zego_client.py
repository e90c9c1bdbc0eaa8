"""The ZEGO adapter: signature, query string and one HTTP call over a fake requests.Session."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from zego_resume.adapters.zego_client import (
    MAX_ANSWER_BYTES,
    ZegoClient,
    build_query,
    encode_query,
    new_nonce,
    send_in_turn,
    sign,
)
from zego_resume.ports import NoTurnBeforeDeadline, TransportError, ZegoAnswer, ZegoCredentials

from .fakes import APP_ID, SECRET, FakeClock

BASE_URL = "https://rtc-api.example.test"
CREDENTIALS = ZegoCredentials(APP_ID, SECRET)


def _values(query: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in query if key == name]


def _one(query: list[tuple[str, str]], name: str) -> str:
    (value,) = _values(query, name)
    return value


# --- sign / new_nonce -------------------------------------------------------------------------


def test_sign_matches_zegos_official_test_vector() -> None:
    # Given ZEGO's published example (Go sample)
    # When it is signed
    signature = sign(12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943)
    # Then the signature is the documented one
    assert signature == "43e5cfcca828314675f91b001390566a"


def test_new_nonce_is_16_hex_characters() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", new_nonce())


def test_new_nonce_differs_between_calls() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50


# --- build_query ------------------------------------------------------------------------------


def _query(stream_ids: list[str], *, is_test: bool = False, sequence: int = 1764410000123) -> Any:
    return build_query(
        CREDENTIALS, stream_ids, sequence, is_test=is_test, nonce="4fd24687296dd9f3", timestamp=1615186943
    )


def test_build_query_repeats_stream_id_in_order() -> None:
    query = _query(["stream-c", "stream-a", "stream-b"])
    assert _values(query, "StreamId[]") == ["stream-c", "stream-a", "stream-b"]


def test_build_query_sends_sequence_as_digits() -> None:
    assert _one(_query(["s"], sequence=1764410000123), "Sequence") == "1764410000123"


def test_build_query_names_the_resume_action_and_signature_version_2() -> None:
    query = _query(["s"])
    assert _one(query, "Action") == "ResumeRTCStreams"
    assert _one(query, "SignatureVersion") == "2.0"
    assert _one(query, "AppId") == str(APP_ID)


def test_build_query_signature_is_over_the_sent_nonce_and_timestamp() -> None:
    query = _query(["s"])
    expected = sign(
        int(_one(query, "AppId")), _one(query, "SignatureNonce"), SECRET, int(_one(query, "Timestamp"))
    )
    assert _one(query, "Signature") == expected


def test_build_query_never_carries_the_secret() -> None:
    assert all(SECRET not in value for _, value in _query(["s"]))


def test_build_query_sends_is_test_only_in_test_mode() -> None:
    assert _values(_query(["s"], is_test=False), "IsTest") == []
    assert _values(_query(["s"], is_test=True), "IsTest") == ["true"]


@pytest.mark.parametrize("count", [0, 21], ids=["no-ids", "21-ids"])
def test_build_query_refuses_a_call_outside_1_to_20_ids(count: int) -> None:
    with pytest.raises(ValueError, match="stream ids"):
        _query([f"s{index}" for index in range(count)])


def test_encode_query_equals_what_urlencode_would_send() -> None:
    # Given a real call's query (ids in ZEGO's charset, digits, hex, fixed words)
    query = _query(["stream-a", "B_2", "c-3"])
    # When it is encoded without quoting each value
    # Then ZEGO reads exactly what a fully quoting urlencode would have sent
    assert encode_query(query) == urlencode(query)
    assert parse_qsl(encode_query(query), strict_parsing=True) == query


def test_build_query_accepts_exactly_20_ids() -> None:
    assert len(_values(_query([f"s{index}" for index in range(20)]), "StreamId[]")) == 20


@pytest.mark.parametrize(
    "stream_id",
    ["a&Action=ForbidRTCStreams", "a b", "a=b", "a%26", "a/b", "stréam", "", "a" * 257],
    ids=["ampersand", "space", "equals", "percent", "slash", "non-ascii", "empty", "too-long"],
)
def test_build_query_refuses_an_id_outside_zegos_charset(stream_id: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is ours, the type is the contract
        _query(["good", stream_id])


# --- ZegoClient.resume over a fake session ----------------------------------------------------


class FakeRaw:
    def __init__(self, content: bytes) -> None:
        self._content = content

    def read(self, amount: int, decode_content: bool = True) -> bytes:
        return self._content[:amount]


class FakeResponse:
    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.raw = FakeRaw(content)
        self.closed = False

    def close(self) -> None:
        self.closed = True


Reply = FakeResponse | Callable[[str], BaseException]


class FakeSession:
    """requests.Session's `get`, `mount` and `headers`, answering from a list of replies.

    Like a real connection of the client's, it takes the call's turn before "writing" the request;
    a request is recorded only once its turn is taken.
    """

    def __init__(self, replies: list[Reply]) -> None:
        self._replies = replies
        self.headers: dict[str, str] = {}
        self.requests: list[tuple[str, list[tuple[str, str]], tuple[float, float]]] = []
        self.options: list[dict[str, Any]] = []
        self.mounted: list[str] = []
        self.responses: list[FakeResponse] = []

    def mount(self, prefix: str, adapter: object) -> None:
        self.mounted.append(prefix)

    def get(self, url: str, timeout: tuple[float, float], **options: Any) -> FakeResponse:
        send_in_turn(None, b"")
        # Recorded as (address, decoded query, timeout): what ZEGO would read from the URL.
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
        self.requests.append((f"{parts.scheme}://{parts.netloc}{parts.path}", query, timeout))
        self.options.append(options)
        reply = self._replies.pop(0)
        if isinstance(reply, FakeResponse):
            self.responses.append(reply)
            return reply
        raise reply(url)


def _json_reply(document: object, status: int = 200) -> FakeResponse:
    return FakeResponse(status, json.dumps(document).encode())


OK = _json_reply({"Code": 0, "Message": "success", "RequestId": "zego-1", "Data": None})


class Turns:
    """A call's turn that answers from a list (yes by default), counting how often it was taken."""

    def __init__(self, *answers: bool) -> None:
        self._answers = list(answers)
        self.taken = 0
        self.written_count = 0

    def __call__(self) -> bool:
        self.taken += 1
        return self._answers.pop(0) if self._answers else True

    def written(self, at: float | None) -> None:
        self.written_count += 1


def _client(replies: list[Reply], *, clock: FakeClock | None = None, read_timeout: float = 3.0) -> Any:
    session = FakeSession(replies)
    client = ZegoClient(
        BASE_URL, session=session, clock=clock or FakeClock(1_764_410_000.4), read_timeout=read_timeout
    )
    return client, session


def _resume(client: Any, stream_ids: list[str] | None = None, sequence: int = 1, **options: Any) -> Any:
    options.setdefault("deadline", time.monotonic() + 10.0)
    options.setdefault("turn", Turns())
    return client.resume(CREDENTIALS, stream_ids or ["stream-a"], sequence, **options)


def _requests_error(kind: type[Exception]) -> Callable[..., BaseException]:
    # requests quotes the whole signed URL in its messages: the adapter must not pass it on.
    def build(url: str) -> BaseException:
        return kind(f"HTTPSConnectionPool: Max retries exceeded with url: {url}")

    return build


def test_resume_success_returns_zegos_answer() -> None:
    client, _ = _client([OK])
    answer = _resume(client)
    assert answer == ZegoAnswer(code=0, message="success", request_id="zego-1")


def test_resume_returns_a_non_zero_code_instead_of_raising() -> None:
    client, _ = _client([_json_reply({"Code": 30006, "Message": "invalid stream id list"})])
    assert _resume(client).code == 30006


def test_resume_signs_each_call_with_a_fresh_nonce_and_the_current_timestamp() -> None:
    # Given a client whose clock moves between two calls
    clock = FakeClock(1_764_410_000.9)
    client, session = _client([OK, OK], clock=clock)
    # When it makes both calls
    _resume(client)
    clock.advance(2.0)
    _resume(client, sequence=2)
    # Then each carries its own nonce and the timestamp (seconds) of its own moment, signed together
    (_, first, _), (_, second, _) = session.requests
    assert _one(first, "SignatureNonce") != _one(second, "SignatureNonce")
    assert [_one(first, "Timestamp"), _one(second, "Timestamp")] == ["1764410000", "1764410002"]
    for query in (first, second):
        assert _one(query, "Signature") == sign(
            APP_ID, _one(query, "SignatureNonce"), SECRET, int(_one(query, "Timestamp"))
        )


def test_resume_sends_the_stream_ids_and_sequence_it_was_given() -> None:
    client, session = _client([OK])
    _resume(client, ["stream-a", "stream-b"], 1764410000123)
    (url, query, _) = session.requests[0]
    assert url.startswith(BASE_URL)
    assert _values(query, "StreamId[]") == ["stream-a", "stream-b"]
    assert _one(query, "Sequence") == "1764410000123"


@pytest.mark.parametrize("time_left", [0.2, 0.9, 2.0, 2.9, 30.0])
def test_resume_timeouts_never_exceed_the_time_left(time_left: float) -> None:
    client, session = _client([OK], read_timeout=3.0)
    _resume(client, deadline=time.monotonic() + time_left)
    (_, _, timeout) = session.requests[0]
    assert all(0 < part <= time_left for part in timeout)


def test_resume_uses_the_configured_read_timeout_when_time_allows() -> None:
    client, session = _client([OK], read_timeout=2.5)
    _resume(client, deadline=time.monotonic() + 30.0)
    assert session.requests[0][2][1] == 2.5


def test_resume_takes_the_calls_turn_once_before_the_request_goes_out() -> None:
    client, session = _client([OK])
    turns = Turns()
    _resume(client, turn=turns)
    assert turns.taken == 1
    assert len(session.requests) == 1


def test_resume_without_a_turn_sends_nothing_and_says_so() -> None:
    # Given a turn that says no (no start before the deadline)
    client, session = _client([OK])
    # When the call is made
    with pytest.raises(NoTurnBeforeDeadline) as raised:
        _resume(client, turn=Turns(False))
    # Then nothing was sent, and the error is the transient Timeout that stops the attempts
    assert session.requests == []
    assert (raised.value.code, isinstance(raised.value, TransportError)) == ("Timeout", True)


def test_resume_never_follows_a_redirect_and_reads_the_answer_itself() -> None:
    client, session = _client([OK])
    _resume(client)
    assert session.options[0] == {"allow_redirects": False, "stream": True}
    assert session.responses[0].closed


def test_resume_asks_for_an_uncompressed_answer() -> None:
    _, session = _client([OK])
    assert session.headers["Accept-Encoding"] == "identity"


def test_an_answer_larger_than_any_zego_answer_is_invalid() -> None:
    huge = json.dumps({"Code": 0, "Message": "x" * (MAX_ANSWER_BYTES + 10)}).encode()
    client, _ = _client([FakeResponse(200, huge)])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == "InvalidResponse"


def test_a_body_of_deeply_nested_brackets_is_an_invalid_response_not_a_crash() -> None:
    client, _ = _client([FakeResponse(200, b"[" * 5000)])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == "InvalidResponse"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (requests.Timeout, "Timeout"),
        (requests.ReadTimeout, "Timeout"),
        (requests.ConnectionError, "ConnectionError"),
        # What requests raises on a malformed Location header, and urllib3 on broken headers
        (ValueError, "ConnectionError"),
        (requests.exceptions.InvalidURL, "ConnectionError"),
        (OSError, "ConnectionError"),
    ],
    ids=["timeout", "read-timeout", "connection-error", "value-error", "invalid-url", "os-error"],
)
def test_resume_turns_transport_failures_into_a_named_transport_error(
    error: type[Exception], code: str
) -> None:
    client, _ = _client([_requests_error(error)])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == code


def _secrets_of(session: FakeSession) -> list[str]:
    (_, query, _) = session.requests[0]
    return [SECRET, _one(query, "Signature"), _one(query, "SignatureNonce"), BASE_URL]


@pytest.mark.parametrize(
    "error",
    [requests.Timeout, requests.ConnectionError, ValueError],
    ids=["timeout", "connection-error", "value-error"],
)
def test_transport_error_message_holds_no_signature_secret_or_url(
    error: type[Exception],
) -> None:
    # Given a requests error whose text quotes the signed URL
    client, session = _client([_requests_error(error)])
    # When the call fails
    with pytest.raises(TransportError) as raised:
        _resume(client)
    # Then neither its message nor its str() carries anything secret or the URL
    for sensitive in _secrets_of(session):
        assert sensitive not in raised.value.message
        assert sensitive not in str(raised.value)
        assert sensitive not in repr(raised.value)


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([current.__cause__, current.__context__])


@pytest.mark.parametrize(
    "error",
    [requests.Timeout, requests.ConnectionError, ValueError],
    ids=["timeout", "connection-error", "value-error"],
)
def test_transport_error_chain_holds_no_signature_secret_or_url(
    error: type[Exception],
) -> None:
    # Given a requests error whose text quotes the signed URL
    client, session = _client([_requests_error(error)])
    # When the call fails
    with pytest.raises(TransportError) as raised:
        _resume(client)
    # Then no exception reachable from it (__cause__ / __context__) carries the URL or signature
    for linked in _chain(raised.value):
        for sensitive in _secrets_of(session):
            assert sensitive not in str(linked)


@pytest.mark.parametrize("status", [503, 500, 429, 404, 302], ids=str)
def test_resume_turns_a_non_2xx_status_into_http_error(status: int) -> None:
    client, _ = _client([_json_reply({"Code": 0}, status=status)])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == "HttpError"


def test_resume_turns_a_body_that_is_not_json_into_invalid_response() -> None:
    client, _ = _client([FakeResponse(200, b"<html>bad gateway</html>")])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == "InvalidResponse"


@pytest.mark.parametrize(
    "document",
    [{"Message": "ok"}, {"Code": "0"}, {"Code": True}, {"Code": 0.0}, {"Code": None}, [0], "0"],
    ids=["no-code", "string-code", "bool-code", "float-code", "null-code", "list", "string"],
)
def test_resume_turns_json_without_an_integer_code_into_invalid_response(document: object) -> None:
    client, _ = _client([_json_reply(document)])
    with pytest.raises(TransportError) as raised:
        _resume(client)
    assert raised.value.code == "InvalidResponse"


def test_the_session_ignores_proxies_and_netrc_from_the_environment() -> None:
    # Given a real requests session
    session = requests.Session()
    # When the client adopts it
    ZegoClient(BASE_URL, session=session)
    # Then it no longer reads proxies, .netrc or a CA bundle from the environment on every call
    assert session.trust_env is False
