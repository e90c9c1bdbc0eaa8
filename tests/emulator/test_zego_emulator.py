"""Behaviour of the ZEGO Server API emulator, driven over real HTTP on loopback."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from zegosim.zego import Fault, ZegoEmulator, zego_signature

pytestmark = pytest.mark.enable_socket

APP_ID = 1234567890
SECRET = "0123456789abcdef0123456789abcdef"
NOW = 1_764_410_000.0
REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """A clock the test moves by hand, for the wall clock or the monotonic one."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sign(app_id: int | str, nonce: str, secret: str, timestamp: int | str) -> str:
    """Independent of the emulator: ZEGO signature 2.0 straight from ZEGO-API.md."""
    return hashlib.md5(f"{app_id}{nonce}{secret}{timestamp}".encode()).hexdigest()  # noqa: S324


_nonce_counter = 0


def fresh_nonce() -> str:
    global _nonce_counter
    _nonce_counter += 1
    return f"{_nonce_counter:016x}"


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


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., ZegoEmulator]]:
    started: list[ZegoEmulator] = []

    def make(**kwargs: Any) -> ZegoEmulator:
        kwargs.setdefault("clock", FakeClock(NOW))
        emulator = ZegoEmulator(kwargs.pop("app_id", APP_ID), kwargs.pop("server_secret", SECRET), **kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(make_emulator: Callable[..., ZegoEmulator]) -> ZegoEmulator:
    return make_emulator()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def get(session: requests.Session, emulator: ZegoEmulator, query: str, **kwargs: Any) -> requests.Response:
    return session.get(f"{emulator.base_url}/?{query}", timeout=kwargs.pop("timeout", 5), **kwargs)


def code_of(session: requests.Session, emulator: ZegoEmulator, **query: Any) -> int:
    code: int = get(session, emulator, build_query(**query)).json()["Code"]
    return code


# ----- signature ---------------------------------------------------------------------------------


def test_signature_matches_zegos_official_vector() -> None:
    # Given the vector from ZEGO's Go sample
    args = (12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943)
    # When both the emulator and the independent helper sign it
    # Then both give ZEGO's published signature
    assert zego_signature(*args) == "43e5cfcca828314675f91b001390566a"
    assert sign(*args) == "43e5cfcca828314675f91b001390566a"


# ----- a valid call ------------------------------------------------------------------------------


def test_valid_resume_answers_success_and_applies_the_streams(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a correctly signed resume of two streams
    query = build_query(stream_ids=("stream-a", "stream-b"), sequence="1764410000123")
    # When it is sent
    response = get(session, emulator, query)
    # Then ZEGO's success document comes back and both streams are resumed
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["Code"], body["Message"], body["Data"]) == (0, "success", None)
    assert body["RequestId"]
    assert emulator.resumed_stream_ids() == {"stream-a", "stream-b"}
    assert emulator.stream_state("stream-a") == ("resumed", 1764410000123)
    assert [c.request_id for c in emulator.applied()] == [body["RequestId"]]


def test_forbid_marks_the_stream_forbidden(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a correctly signed forbid
    # When it is sent
    code = code_of(session, emulator, action="ForbidRTCStreams", sequence="5")
    # Then the stream is forbidden at that sequence and not counted as resumed
    assert code == 0
    assert emulator.stream_state("stream-a") == ("forbidden", 5)
    assert emulator.resumed_stream_ids() == set()


def test_duplicate_ids_in_one_call_are_applied_once(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a call listing the same stream twice
    # When it is sent
    code = code_of(session, emulator, stream_ids=("stream-a", "stream-a"))
    # Then it succeeds and the stream is applied once
    assert code == 0
    assert emulator.applied()[0].applied_stream_ids == ("stream-a",)


def test_percent_encoded_bracket_is_accepted(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given StreamId%5B%5D instead of StreamId[]
    query = build_query(stream_ids=("stream-a",), encode_brackets=True)
    assert "StreamId%5B%5D=stream-a" in query
    # When it is sent
    code = get(session, emulator, query).json()["Code"]
    # Then it is understood like the raw bracket
    assert code == 0
    assert emulator.resumed_stream_ids() == {"stream-a"}


# ----- validation, in order -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"Action": None}, 100000003, id="missing Action"),
        pytest.param({"Action": "DescribeRTCStreams"}, 100000003, id="unknown Action"),
        pytest.param({"AppId": None}, 100000001, id="missing AppId"),
        pytest.param({"AppId": "12ab"}, 100000001, id="non-digit AppId"),
        pytest.param({"AppId": "4294967296"}, 100000001, id="AppId over uint32"),
        pytest.param({"SignatureNonce": None}, 100000002, id="missing nonce"),
        pytest.param({"SignatureNonce": "abc"}, 100000002, id="short nonce"),
        pytest.param({"SignatureNonce": "zzzzzzzzzzzzzzzz"}, 100000002, id="non-hex nonce"),
        pytest.param({"Timestamp": None}, 100000006, id="missing Timestamp"),
        pytest.param({"Timestamp": "1764410000.5"}, 100000006, id="fractional Timestamp"),
        pytest.param({"Signature": None}, 100000007, id="missing Signature"),
        pytest.param({"Signature": "ABCDEF0123456789ABCDEF0123456789"}, 100000007, id="uppercase Signature"),
        pytest.param({"SignatureVersion": "1.0"}, 100000008, id="SignatureVersion 1.0"),
        pytest.param({"SignatureVersion": None}, 100000008, id="missing SignatureVersion"),
        pytest.param({"Signature": "0" * 32}, 100000005, id="wrong Signature"),
    ],
)
def test_malformed_common_parameter_gets_its_code(
    emulator: ZegoEmulator,
    session: requests.Session,
    overrides: dict[str, str | None],
    expected: int,
) -> None:
    # Given an otherwise valid call with one common parameter broken
    # When it is sent
    code = code_of(session, emulator, overrides=overrides)
    # Then the documented code comes back and nothing is applied
    assert code == expected
    assert emulator.applied() == []
    assert emulator.stream_state("stream-a") is None


def test_action_is_checked_before_the_common_parameters(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a call with an unknown Action and no AppId
    # When it is sent
    code = code_of(session, emulator, overrides={"Action": "Nope", "AppId": None})
    # Then the Action error wins
    assert code == 100000003


def test_another_app_id_is_unknown(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a call correctly signed for another AppId
    # When it is sent
    code = code_of(session, emulator, app_id=42)
    # Then ZEGO does not know that AppId
    assert code == 100000010


@pytest.mark.parametrize("offset", [601, -601])
def test_timestamp_more_than_ten_minutes_off_is_expired(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session, offset: int
) -> None:
    # Given an emulator whose wall clock reads NOW
    emulator = make_emulator(clock=FakeClock(NOW))
    # When a call is signed 601 s away from it
    code = code_of(session, emulator, timestamp=int(NOW) + offset)
    # Then the signature is expired
    assert code == 100000004


@pytest.mark.parametrize("offset", [600, -600])
def test_timestamp_exactly_ten_minutes_off_is_accepted(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session, offset: int
) -> None:
    # Given an emulator whose wall clock reads NOW
    emulator = make_emulator(clock=FakeClock(NOW))
    # When a call is signed exactly 600 s away from it
    code = code_of(session, emulator, timestamp=int(NOW) + offset)
    # Then it is still valid
    assert code == 0


def test_istest_true_on_a_production_app_is_refused(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a production emulator
    # When a call says IsTest=true
    code = code_of(session, emulator, is_test="true")
    # Then the environment mismatch is reported
    assert code == 30004


def test_test_app_without_istest_is_refused(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a test-environment emulator
    emulator = make_emulator(is_test=True)
    # When a call with the test prefix omits IsTest
    code = code_of(session, emulator, stream_ids=(f"zegotest-{APP_ID}-a",))
    # Then the environment mismatch is reported
    assert code == 30004


def test_istest_with_another_value_is_refused(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a production emulator
    # When IsTest is neither true nor false
    code = code_of(session, emulator, is_test="yes")
    # Then it is an IsTest error
    assert code == 30004


def test_istest_false_is_accepted_on_a_production_app(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a production emulator
    # When a call says IsTest=false explicitly
    code = code_of(session, emulator, is_test="false")
    # Then it succeeds
    assert code == 0


@pytest.mark.parametrize("count", [0, 21])
def test_stream_id_count_outside_1_to_20_is_refused(
    emulator: ZegoEmulator, session: requests.Session, count: int
) -> None:
    # Given a call with too few or too many stream ids
    ids = tuple(f"s{i}" for i in range(count))
    # When it is sent
    code = code_of(session, emulator, stream_ids=ids)
    # Then the stream list is invalid
    assert code == 30006


def test_twenty_stream_ids_are_accepted(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a call with exactly 20 ids
    ids = tuple(f"s{i}" for i in range(20))
    # When it is sent
    code = code_of(session, emulator, stream_ids=ids)
    # Then all 20 are resumed
    assert code == 0
    assert emulator.resumed_stream_ids() == set(ids)


@pytest.mark.parametrize("bad_id", ["has space", "dot.ted", "slash/ed", "é", "x" * 257, ""])
def test_stream_id_outside_the_charset_is_refused(
    emulator: ZegoEmulator, session: requests.Session, bad_id: str
) -> None:
    # Given a call whose second id breaks ZEGO's stream id rules
    # When it is sent
    code = code_of(session, emulator, stream_ids=("good-id", bad_id))
    # Then the whole call is refused and nothing applied
    assert code == 30006
    assert emulator.stream_state("good-id") is None


def test_test_mode_requires_the_zegotest_prefix(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a test-environment emulator
    emulator = make_emulator(is_test=True)
    # When one call lacks the prefix and another carries it
    without = code_of(session, emulator, is_test="true", stream_ids=("stream-a",))
    with_prefix = code_of(session, emulator, is_test="true", stream_ids=(f"zegotest-{APP_ID}-a",))
    # Then only the prefixed one is accepted
    assert (without, with_prefix) == (30006, 0)


@pytest.mark.parametrize("sequence", ["abc", "-1", "1.5", "", None])
def test_sequence_must_be_digits(
    emulator: ZegoEmulator, session: requests.Session, sequence: str | None
) -> None:
    # Given a call whose Sequence is missing or not digits
    # When it is sent
    code = code_of(session, emulator, sequence=sequence)
    # Then it is refused with 30006
    assert code == 30006


# ----- rate limit --------------------------------------------------------------------------------


def test_call_over_the_rate_limit_gets_30002(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a limit of 3 calls a second and a clock that does not move
    emulator = make_emulator(rate_limit=3, monotonic=FakeClock(100.0))
    # When 4 calls arrive at once
    codes = [code_of(session, emulator, sequence=str(i)) for i in range(1, 5)]
    # Then exactly the fourth is refused and not counted in the window
    assert codes == [0, 0, 0, 30002]
    assert emulator.rate_limited_count() == 1
    assert emulator.max_calls_in_any_window() == 3


def test_calls_pass_again_once_the_window_has_slid(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a limit of 3 that has been used up
    clock = FakeClock(100.0)
    emulator = make_emulator(rate_limit=3, monotonic=clock)
    for i in range(4):
        code_of(session, emulator, sequence=str(i + 1))
    # When one second has passed
    clock.advance(1.0)
    # Then calls pass again
    assert code_of(session, emulator, sequence="10") == 0
    assert emulator.rate_limited_count() == 1


def test_calls_refused_before_the_rate_limit_do_not_use_the_budget(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a limit of 2 and two calls with a wrong signature
    emulator = make_emulator(rate_limit=2, monotonic=FakeClock(100.0))
    for _ in range(2):
        code_of(session, emulator, secret="f" * 32)
    # When two valid calls follow at the same instant
    codes = [code_of(session, emulator, sequence=str(i)) for i in (1, 2)]
    # Then both pass
    assert codes == [0, 0]


def test_default_rate_limits_follow_zego(make_emulator: Callable[..., ZegoEmulator]) -> None:
    # Given emulators built without a rate limit
    # When they are for production and the test environment
    # Then they allow 20 and 5 calls a second
    assert make_emulator().rate_limit == 20
    assert make_emulator(is_test=True).rate_limit == 5


def test_real_burst_over_the_limit_is_answered_30002(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a limit of 3 with the real monotonic clock
    emulator = make_emulator(rate_limit=3)
    # When 4 calls are sent back to back on one connection
    codes = [code_of(session, emulator, sequence=str(i)) for i in range(1, 5)]
    # Then one of them is refused (loopback answers far faster than one second)
    assert codes.count(30002) == 1
    assert emulator.code_counts() == {0: 3, 30002: 1}


# ----- Sequence rule -----------------------------------------------------------------------------


def test_repeated_sequence_within_10s_is_ignored_but_answered_0(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a stream resumed at sequence 7
    clock = FakeClock(100.0)
    emulator = make_emulator(monotonic=clock)
    code_of(session, emulator, action="ForbidRTCStreams", sequence="7")
    # When another call with sequence 7 arrives 5 s later
    clock.advance(5)
    code = code_of(session, emulator, sequence="7")
    # Then ZEGO answers 0 but leaves the stream as it was, and the refusal is recorded
    assert code == 0
    assert emulator.stream_state("stream-a") == ("forbidden", 7)
    [stale] = emulator.stale()
    assert (stale.stream_id, stale.sequence, stale.previous_sequence, stale.action) == (
        "stream-a",
        7,
        7,
        "ResumeRTCStreams",
    )
    assert len(emulator.applied()) == 1


def test_stale_code_answers_the_whole_call_with_that_code(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given an emulator that reports stale sequences with 30006, and stream-a forbidden at 7
    emulator = make_emulator(stale_code=30006, monotonic=FakeClock(100.0))
    code_of(session, emulator, action="ForbidRTCStreams", sequence="7")
    # When a call with sequence 7 resumes stream-a and a fresh stream-b
    code = code_of(session, emulator, stream_ids=("stream-a", "stream-b"), sequence="7")
    # Then it is answered 30006 and nothing in it is applied
    assert code == 30006
    assert emulator.stream_state("stream-a") == ("forbidden", 7)
    assert emulator.stream_state("stream-b") is None


def test_older_resume_does_not_undo_a_newer_forbid(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given stream-a forbidden at sequence 10
    emulator = make_emulator(monotonic=FakeClock(100.0))
    code_of(session, emulator, action="ForbidRTCStreams", sequence="10")
    # When a resume decided earlier (sequence 9) arrives afterwards
    code_of(session, emulator, action="ResumeRTCStreams", sequence="9")
    # Then the stream stays forbidden
    assert emulator.stream_state("stream-a") == ("forbidden", 10)
    assert emulator.resumed_stream_ids() == set()


def test_sequences_are_compared_as_integers(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given stream-a forbidden at sequence 9
    emulator = make_emulator(monotonic=FakeClock(100.0))
    code_of(session, emulator, action="ForbidRTCStreams", sequence="9")
    # When a resume at sequence 10 follows (smaller as a string, larger as a number)
    code_of(session, emulator, sequence="10")
    # Then it is applied
    assert emulator.stream_state("stream-a") == ("resumed", 10)


def test_stale_stream_does_not_hold_back_the_others_by_default(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given stream-a forbidden at sequence 10
    emulator = make_emulator(monotonic=FakeClock(100.0))
    code_of(session, emulator, action="ForbidRTCStreams", sequence="10")
    # When a resume at 9 lists stream-a and a fresh stream-b
    code = code_of(session, emulator, stream_ids=("stream-a", "stream-b"), sequence="9")
    # Then stream-b is resumed and stream-a is not
    assert code == 0
    assert emulator.resumed_stream_ids() == {"stream-b"}


def test_sequence_rule_stops_applying_after_10_seconds(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given stream-a forbidden at sequence 10
    clock = FakeClock(100.0)
    emulator = make_emulator(monotonic=clock)
    code_of(session, emulator, action="ForbidRTCStreams", sequence="10")
    # When a resume at sequence 9 arrives more than 10 s later
    clock.advance(10.1)
    code_of(session, emulator, sequence="9")
    # Then ZEGO no longer compares and applies it
    assert emulator.stream_state("stream-a") == ("resumed", 9)
    assert emulator.stale() == []


# ----- faults ------------------------------------------------------------------------------------


def test_code_fault_answers_that_code_without_applying(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given an injected 30003
    emulator.inject(Fault.of_code(30003))
    # When a valid call is sent
    code = code_of(session, emulator)
    # Then it is answered 30003 and nothing is applied
    assert code == 30003
    assert emulator.stream_state("stream-a") is None
    assert emulator.calls()[0].fault == Fault(code=30003)


def test_http_fault_answers_that_status(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given an injected HTTP 503
    emulator.inject(Fault.http(503))
    # When a valid call is sent
    response = get(session, emulator, build_query())
    # Then the gateway error comes back and nothing is applied
    assert response.status_code == 503
    assert emulator.stream_state("stream-a") is None
    assert emulator.calls()[0].code is None


def test_delay_fault_exceeds_the_client_read_timeout(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given an injected slow answer that does not apply the call
    emulator.inject(Fault.slow(0.3, apply=False))
    # When a client waits only 0.1 s
    # Then it times out and the stream is unchanged
    with pytest.raises(requests.ReadTimeout):
        get(session, emulator, build_query(), timeout=0.1)
    assert emulator.stream_state("stream-a") is None


def test_slow_success_is_applied_although_the_client_timed_out(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given an injected slow answer that applies the call
    emulator.inject(Fault.slow(0.3, apply=True))
    # When a client waits only 0.1 s
    with pytest.raises(requests.ReadTimeout):
        get(session, emulator, build_query(sequence="3"), timeout=0.1)
    # Then ZEGO applied it anyway
    assert emulator.stream_state("stream-a") == ("resumed", 3)


def test_slow_fault_without_apply_answers_504_to_a_patient_client(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given an injected short delay that applies nothing
    emulator.inject(Fault.slow(0.05, apply=False))
    # When the client waits long enough
    response = get(session, emulator, build_query())
    # Then it learns of an upstream timeout
    assert response.status_code == 504


def test_drop_fault_closes_the_connection(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given an injected drop
    emulator.inject(Fault.dropped())
    # When a valid call is sent
    # Then the client sees a connection error and nothing is applied
    with pytest.raises(requests.ConnectionError):
        get(session, emulator, build_query())
    assert emulator.stream_state("stream-a") is None


def test_non_json_fault_answers_an_html_page(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given an injected garbage answer
    emulator.inject(Fault.garbage())
    # When a valid call is sent
    response = get(session, emulator, build_query())
    # Then HTTP 200 comes back with a body that is not JSON
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_fault_with_apply_applies_before_answering(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given an injected drop that happens after ZEGO applied the call
    emulator.inject(Fault.dropped(apply=True))
    # When a valid call is sent
    with pytest.raises(requests.ConnectionError):
        get(session, emulator, build_query(sequence="4"))
    # Then the stream is resumed although the client never heard so
    assert emulator.stream_state("stream-a") == ("resumed", 4)
    assert emulator.applied() == []


def test_queued_faults_hit_the_next_valid_calls_in_order(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given two queued faults
    emulator.inject(Fault.of_code(30003), Fault.of_code(42004))
    # When an invalid call and then three valid calls are sent
    codes = [code_of(session, emulator, overrides={"Signature": "0" * 32})]
    codes += [code_of(session, emulator, sequence=str(i)) for i in (1, 2, 3)]
    # Then the invalid call consumes no fault and the faults come in order
    assert codes == [100000005, 30003, 42004, 0]


def test_clear_faults_forgets_queued_faults(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a queued fault
    emulator.inject(Fault.of_code(30003))
    # When faults are cleared before a call
    emulator.clear_faults()
    # Then the call succeeds
    assert code_of(session, emulator) == 0


def test_random_faults_with_probability_1_hit_every_call(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given random faults that always fire
    emulator.inject_randomly([Fault.of_code(30003), Fault.of_code(42004)], probability=1.0, seed=1)
    # When three valid calls are sent
    codes = [code_of(session, emulator, sequence=str(i)) for i in (1, 2, 3)]
    # Then each got one of the faults
    assert set(codes) <= {30003, 42004}
    assert emulator.applied() == []


def test_targeted_fault_hits_only_calls_carrying_the_stream(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a fault aimed at one stream, for its next two calls
    emulator.inject_for_stream("target", Fault.of_code(30003), times=2)
    # When calls with and without that stream are sent
    codes = [
        code_of(session, emulator, stream_ids=("other",), sequence="1"),
        code_of(session, emulator, stream_ids=("x", "target"), sequence="2"),
        code_of(session, emulator, stream_ids=("target",), sequence="3"),
        code_of(session, emulator, stream_ids=("target",), sequence="4"),
    ]
    # Then only the first two carrying it are faulted, and the fault is then used up
    assert codes == [0, 30003, 30003, 0]
    assert emulator.stream_state("target") == ("resumed", 4)


def test_targeted_fault_without_a_count_persists_until_cleared(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    emulator.inject_for_stream("target", Fault.of_code(42004))
    codes = [code_of(session, emulator, stream_ids=("target",), sequence=str(n)) for n in (1, 2, 3)]
    emulator.clear_faults()
    assert codes == [42004, 42004, 42004]
    assert code_of(session, emulator, stream_ids=("target",), sequence="4") == 0


def test_random_faults_with_probability_0_are_off(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given random faults turned off
    emulator.inject_randomly([Fault.of_code(30003)], probability=1.0)
    emulator.inject_randomly([Fault.of_code(30003)], probability=0.0)
    # When three valid calls are sent
    codes = [code_of(session, emulator, sequence=str(i)) for i in (1, 2, 3)]
    # Then none is faulted
    assert codes == [0, 0, 0]


def test_fault_takes_one_kind_of_answer() -> None:
    # Given a fault asking both to drop and to answer a code
    # When it is built
    # Then it is refused
    with pytest.raises(ValueError, match="at most one of"):
        Fault(code=30003, drop=True)


# ----- secret rotation, latency, concurrency ---------------------------------------------------


def test_rotated_secret_makes_the_old_one_fail(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given the secret has been rotated
    new_secret = "fedcba9876543210fedcba9876543210"
    emulator.rotate_secret(new_secret)
    # When calls are signed with the old and the new secret
    old = code_of(session, emulator, sequence="1")
    new = code_of(session, emulator, sequence="2", secret=new_secret)
    # Then only the new one is accepted
    assert (old, new) == (100000005, 0)


def test_latency_delays_every_answer(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given added latency of 0.3 s
    emulator.set_latency(0.3)
    # When a client waits only 0.1 s
    # Then it times out
    with pytest.raises(requests.ReadTimeout):
        get(session, emulator, build_query(), timeout=0.1)


def test_slow_answer_does_not_block_other_connections(emulator: ZegoEmulator) -> None:
    # Given a call held by a 1 s delay on one connection
    emulator.inject(Fault.slow(1.0))
    finished: list[str] = []

    def slow_call() -> None:
        requests.get(f"{emulator.base_url}/?{build_query()}", timeout=5)
        finished.append("slow")

    slow = threading.Thread(target=slow_call, daemon=True)
    slow.start()
    for _ in range(200):  # until the server has taken the slow call in, at most ~2 s
        if emulator.calls():
            break
        time.sleep(0.01)
    # When another client calls meanwhile
    code = requests.get(f"{emulator.base_url}/?{build_query(sequence='2')}", timeout=5).json()["Code"]
    finished.append("fast")
    slow.join(timeout=5)
    # Then the second call was answered before the first
    assert code == 0
    assert finished == ["fast", "slow"]


def test_one_session_reuses_one_connection(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given one requests.Session
    # When it makes two calls
    codes = [code_of(session, emulator, sequence=str(i)) for i in (1, 2)]
    # Then both succeed over a single kept-alive connection
    assert codes == [0, 0]
    assert emulator.connection_count() == 1
    assert emulator.max_calls_in_any_window() == 2


def test_nothing_is_logged_to_stderr(
    emulator: ZegoEmulator, session: requests.Session, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a call whose query carries a signature
    query = build_query()
    # When it and an admin request are served
    get(session, emulator, query)
    session.get(f"{emulator.base_url}/_emulator/state", timeout=5)
    # Then the server wrote no access log line
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


# ----- records -----------------------------------------------------------------------------------


def test_calls_records_every_request_in_arrival_order(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given an invalid and a valid call
    code_of(session, emulator, overrides={"Action": None})
    code_of(session, emulator, stream_ids=("x", "y"), sequence="8")
    # When the records are read
    first, second = emulator.calls()
    # Then both are there, with what was asked and answered
    assert (first.action, first.code) == ("", 100000003)
    assert (second.action, second.stream_ids, second.sequence, second.code) == (
        "ResumeRTCStreams",
        ("x", "y"),
        "8",
        0,
    )
    assert first.arrival <= second.arrival
    assert "Signature=" in second.query
    assert emulator.code_counts() == {100000003: 1, 0: 1}


def test_reset_clears_records_state_and_faults(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a call, a stream state and a queued fault
    code_of(session, emulator)
    emulator.inject(Fault.of_code(30003))
    # When the emulator is reset
    emulator.reset()
    # Then it is as new, and the next call is not faulted
    assert (emulator.calls(), emulator.stale(), emulator.code_counts()) == ([], [], {})
    assert emulator.stream_state("stream-a") is None
    assert code_of(session, emulator, sequence="1") == 0


def test_unknown_path_answers_404_json(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a path that is not the API
    # When it is requested
    response = session.get(f"{emulator.base_url}/v1/whatever", timeout=5)
    # Then a JSON 404 comes back and no call is recorded
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert emulator.calls() == []


# ----- admin API ---------------------------------------------------------------------------------


def test_admin_state_summarises_the_records(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given one successful call and one with a wrong signature
    code_of(session, emulator, stream_ids=("a", "b"))
    code_of(session, emulator, secret="f" * 32)
    # When the state is read over HTTP
    state = session.get(f"{emulator.base_url}/_emulator/state", timeout=5).json()
    # Then it counts them
    assert {k: state[k] for k in ("calls", "applied", "rateLimited", "stale", "codes")} == {
        "calls": 2,
        "applied": 1,
        "rateLimited": 0,
        "stale": 0,
        "codes": {"0": 1, "100000005": 1},
    }
    assert state["maxCallsInAnyWindow"] == 1
    assert state["resumedStreamIds"] == 2


def test_admin_faults_queue_the_next_answers(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given faults queued over HTTP
    faults = [{"code": 30003}, {"httpStatus": 503}, {"nonJson": True}]
    response = session.post(f"{emulator.base_url}/_emulator/faults", json={"next": faults}, timeout=5)
    assert response.json() == {"ok": True}
    # When three calls are sent
    statuses = [get(session, emulator, build_query(sequence=str(i))) for i in (1, 2, 3)]
    # Then they get those faults in order
    assert statuses[0].json()["Code"] == 30003
    assert statuses[1].status_code == 503
    assert not statuses[2].text.startswith("{")


def test_admin_faults_random_and_clear(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given random faults that always fire, set over HTTP
    url = f"{emulator.base_url}/_emulator/faults"
    session.post(url, json={"random": [{"code": 42004}], "probability": 1.0, "seed": 1}, timeout=5)
    first = code_of(session, emulator, sequence="1")
    # When they are cleared over HTTP
    session.post(url, json={"clear": True}, timeout=5)
    # Then calls succeed again
    assert (first, code_of(session, emulator, sequence="2")) == (42004, 0)


def test_admin_drop_and_slow_faults_parse(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a slow applied fault and a drop queued over HTTP
    url = f"{emulator.base_url}/_emulator/faults"
    session.post(url, json={"next": [{"delay": 0.05, "apply": True}, {"drop": True}]}, timeout=5)
    # When two calls are sent
    slow = code_of(session, emulator, sequence="1")
    # Then the first is a late success and the second is dropped
    assert slow == 0
    with pytest.raises(requests.ConnectionError):
        get(session, emulator, build_query(sequence="2"))


def test_admin_rejects_a_bad_fault(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a fault with an unknown field
    # When it is posted
    response = session.post(f"{emulator.base_url}/_emulator/faults", json={"next": [{"boom": 1}]}, timeout=5)
    # Then it is a 400 and nothing is queued
    assert response.status_code == 400
    assert code_of(session, emulator) == 0


def test_admin_latency(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given latency set to 0.3 s over HTTP
    session.post(f"{emulator.base_url}/_emulator/latency", json={"seconds": 0.3}, timeout=5)
    # When a client waits only 0.1 s
    # Then it times out
    with pytest.raises(requests.ReadTimeout):
        get(session, emulator, build_query(), timeout=0.1)


def test_admin_secret_rotates_without_echoing_it(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a new secret posted over HTTP
    new_secret = "fedcba9876543210fedcba9876543210"
    response = session.post(
        f"{emulator.base_url}/_emulator/secret", json={"serverSecret": new_secret}, timeout=5
    )
    # When calls are signed with the old and new secrets
    old = code_of(session, emulator, sequence="1")
    new = code_of(session, emulator, sequence="2", secret=new_secret)
    # Then the rotation took effect and the answer does not contain the secret
    assert (old, new) == (100000005, 0)
    assert new_secret not in response.text
    assert SECRET not in response.text


def test_admin_reset(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a recorded call
    code_of(session, emulator)
    # When reset is posted over HTTP
    session.post(f"{emulator.base_url}/_emulator/reset", timeout=5)
    # Then the records are empty
    assert emulator.calls() == []
    assert emulator.resumed_stream_ids() == set()


# ----- command line ------------------------------------------------------------------------------


def test_command_line_serves_until_sigterm() -> None:
    # Given the emulator started as a process on a free port, its secret in the environment
    env = {**os.environ, "ZEGO_SERVER_SECRET": SECRET, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        [sys.executable, "-m", "zegosim.zego", "--app-id", str(APP_ID), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        # When its admin API is asked for its state, then it is sent SIGTERM
        state = requests.get(f"{base_url}/_emulator/state", timeout=5).json()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then it served on loopback, and stopped cleanly without printing the secret
    assert base_url.startswith("http://127.0.0.1:")
    assert state["calls"] == 0
    assert returncode == 0
    _, err = process.communicate()
    assert SECRET not in err
