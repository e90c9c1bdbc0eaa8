"""The emulator over real HTTP on loopback: what a client sees, the sleeps that happen in the
server's threads (latency, jitter, connection set-up), and the admin API with its token."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from zegosim.zego import Fault, ZegoEmulator

from .fake_clock import FakeClock
from .signed_calls import APP_ID, NOW, SECRET, build_query

pytestmark = pytest.mark.enable_socket

SAFETY_NET_SECONDS = 10.0  # far beyond any normal wait here; only stops a hung test


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., ZegoEmulator]]:
    started: list[ZegoEmulator] = []

    def make(**options: Any) -> ZegoEmulator:
        options.setdefault("clock", FakeClock(NOW))
        emulator = ZegoEmulator(APP_ID, SECRET, **options)
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


def admin_session(emulator: ZegoEmulator) -> requests.Session:
    """A session carrying the emulator's admin token."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {emulator.admin_token}"
    return s


@pytest.fixture
def admin(emulator: ZegoEmulator) -> Iterator[requests.Session]:
    with admin_session(emulator) as s:
        yield s


def get(session: requests.Session, emulator: ZegoEmulator, query: str, **kwargs: Any) -> requests.Response:
    return session.get(f"{emulator.base_url}/?{query}", timeout=kwargs.pop("timeout", 5), **kwargs)


def code_of(session: requests.Session, emulator: ZegoEmulator, **query: Any) -> int:
    code: int = get(session, emulator, build_query(**query)).json()["Code"]
    return code


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + SAFETY_NET_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the emulator never got there"
        time.sleep(0.005)


# ----- what a client sees ------------------------------------------------------------------------


def test_valid_call_is_answered_with_zegos_json_document(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a correctly signed resume of two streams
    query = build_query(stream_ids=("stream-a", "stream-b"), sequence="1764410000123")
    # When it is sent
    response = get(session, emulator, query)
    # Then ZEGO's success document comes back, naming the call recorded, and both streams are resumed
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert (body["Code"], body["Message"], body["Data"]) == (0, "success", None)
    assert [c.request_id for c in emulator.applied()] == [body["RequestId"]]
    assert emulator.resumed_stream_ids() == {"stream-a", "stream-b"}


def test_a_bad_sequence_and_a_bad_id_list_are_told_apart_on_the_wire(
    emulator: ZegoEmulator, session: requests.Session
) -> None:
    # Given a call with a malformed Sequence and one with a bad stream id
    # When both are sent
    bad_sequence = get(session, emulator, build_query(sequence="1.5")).json()
    bad_ids = get(session, emulator, build_query(stream_ids=("has space",))).json()
    # Then the Sequence is named, and only the id list gets 30006
    assert bad_sequence["Code"] != 30006
    assert "Sequence" in bad_sequence["Message"]
    assert bad_ids["Code"] == 30006


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


def test_unknown_path_answers_404_json(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given a path that is not the API
    # When it is requested
    response = session.get(f"{emulator.base_url}/v1/whatever", timeout=5)
    # Then a JSON 404 comes back and no call is recorded
    assert response.status_code == 404
    assert response.json() == {"error": "not found"}
    assert emulator.calls() == []


def test_post_to_the_api_answers_405(emulator: ZegoEmulator, session: requests.Session) -> None:
    # Given the API path, which ZEGO serves on GET
    # When a signed query is posted instead
    response = session.post(f"{emulator.base_url}/?{build_query()}", timeout=5)
    # Then it is refused without being recorded
    assert response.status_code == 405
    assert emulator.calls() == []


def test_nothing_is_logged_to_stderr(
    emulator: ZegoEmulator,
    session: requests.Session,
    admin: requests.Session,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a call whose query carries a signature
    query = build_query()
    # When it and an admin request are served
    get(session, emulator, query)
    admin.get(f"{emulator.base_url}/_emulator/state", timeout=5)
    # Then the server wrote no access log line
    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")


# ----- latency, connections, the real clock ------------------------------------------------------


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
    wait_for(lambda: bool(emulator.calls()))  # the server has taken the slow call in
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


def test_the_rate_window_counts_where_calls_arrive_not_where_they_are_answered(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given a limit of 1 call a second, the real clock, and a first call answered 0.8 s late
    emulator = make_emulator(rate_limit=1, latency=0.8)
    assert code_of(session, emulator, sequence="1") == 0
    answered_at = time.monotonic()
    [first] = emulator.calls()
    # When, without latency now, a second call is sent just over a second after the first arrived
    # (well under a second after the first was answered)
    emulator.set_latency(0.0)
    wait_for(lambda: time.monotonic() >= first.arrival + 1.02)
    second = code_of(session, emulator, sequence="2")
    # Then the first call's arrival was taken before its 0.8 s answer delay, and the second call
    # passes: the window counted the first where it arrived, not where it was answered
    assert first.arrival <= answered_at - 0.8
    assert second == 0


# ----- network jitter and connection set-up ------------------------------------------------------


def test_jitter_holds_each_call_back_by_its_recorded_draw(
    make_emulator: Callable[..., ZegoEmulator], session: requests.Session
) -> None:
    # Given jitter up to 0.2 s with seed 3, and the draws Python's generator makes from it
    emulator = make_emulator(network_jitter=0.2, jitter_seed=3)
    reference = random.Random(3)
    expected = [reference.uniform(0.0, 0.2) for _ in range(3)]
    # When three calls are sent one after the other, each timed
    elapsed = []
    for sequence in ("1", "2", "3"):
        started = time.monotonic()
        assert code_of(session, emulator, sequence=sequence) == 0
        elapsed.append(time.monotonic() - started)
    # Then each record holds its draw, and each call took at least that long to arrive
    records = emulator.calls()
    assert [r.jitter for r in records] == expected
    assert all(took >= draw for took, draw in zip(elapsed, expected, strict=True))
    # (a call is sent only once the one before was answered, so arrivals are at least a draw apart)
    gaps = [later.arrival - earlier.arrival for earlier, later in itertools.pairwise(records)]
    assert all(gap >= draw for gap, draw in zip(gaps, expected[1:], strict=True))


def first_seed_drawing(jitter: float, first_over: float, second_under: float) -> int:
    """The smallest seed whose first draw is long and second short, found, not hard-coded."""
    for seed in range(10_000):
        draws = random.Random(seed)
        if draws.uniform(0.0, jitter) > first_over and draws.uniform(0.0, jitter) < second_under:
            return seed
    raise AssertionError("no such seed below 10,000")


def test_a_call_with_less_jitter_overtakes_one_sent_before_it(
    make_emulator: Callable[..., ZegoEmulator],
) -> None:
    # Given a limit of 1 call a second and jitter up to 0.8 s, seeded so that the first call
    # drawn is held back more than 0.6 s and the second less than 0.05 s
    seed = first_seed_drawing(0.8, first_over=0.6, second_under=0.05)
    reference = random.Random(seed)
    long_draw, short_draw = reference.uniform(0.0, 0.8), reference.uniform(0.0, 0.8)
    emulator = make_emulator(rate_limit=1, network_jitter=0.8, jitter_seed=seed)
    answers: dict[str, int] = {}

    def send(stream_id: str) -> None:
        query = build_query(stream_ids=(stream_id,))
        answers[stream_id] = requests.get(f"{emulator.base_url}/?{query}", timeout=5).json()["Code"]

    # When call "early" is sent, and once it is in flight, call "late" is sent on another connection
    early = threading.Thread(target=send, args=("early",), daemon=True)
    early.start()
    wait_for(lambda: emulator.calls_in_flight() == 1)
    send("late")
    early.join(timeout=5)
    # Then "late" arrived first with its short draw and took the one-second budget; "early" arrived
    # second with its long draw, within the same second, and was refused
    by_arrival = [(c.stream_ids, c.jitter, c.code) for c in emulator.calls()]
    assert by_arrival == [(("late",), short_draw, 0), (("early",), long_draw, 30002)]
    assert answers == {"late": 0, "early": 30002}


def test_connection_setup_delays_only_a_connections_first_request(
    make_emulator: Callable[..., ZegoEmulator],
) -> None:
    # Given connections that take 0.3 s to set up
    emulator = make_emulator(connection_setup_delay=0.3)
    # When one session makes two calls, and a second session one more
    with requests.Session() as first, requests.Session() as second:
        started = time.monotonic()
        code_of(first, emulator, sequence="1")
        first_call_took = time.monotonic() - started
        code_of(first, emulator, sequence="2")
        code_of(second, emulator, sequence="3")
    # Then each connection's first request waited 0.3 s before it was read, and the kept-alive
    # request did not
    assert [c.connection_setup_delay for c in emulator.calls()] == [0.3, 0.0, 0.3]
    assert first_call_took >= 0.3
    assert emulator.connection_count() == 2


# ----- admin API ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "state"), ("POST", "reset"), ("POST", "secret"), ("GET", "nowhere")],
)
def test_admin_without_the_token_is_refused_over_http(
    emulator: ZegoEmulator, session: requests.Session, method: str, path: str
) -> None:
    # Given a recorded call
    code_of(session, emulator)
    url = f"{emulator.base_url}/_emulator/{path}"
    # When an admin request comes without a token, then with a wrong one
    bare = session.request(method, url, json={"serverSecret": "x" * 32}, timeout=5)
    wrong = session.request(
        method, url, json={"serverSecret": "x" * 32}, headers={"Authorization": "Bearer nope"}, timeout=5
    )
    # Then both are 401 asking for a bearer token, and nothing was reset or rotated
    assert (bare.status_code, wrong.status_code) == (401, 401)
    assert bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert len(emulator.calls()) == 1
    assert code_of(session, emulator, sequence="2") == 0


def test_admin_state_summarises_the_records(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given one successful call and one with a wrong signature
    code_of(session, emulator, stream_ids=("a", "b"))
    code_of(session, emulator, secret="f" * 32)
    # When the state is read over HTTP
    state = admin.get(f"{emulator.base_url}/_emulator/state", timeout=5).json()
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
    assert state["connections"] == 2  # the API session's and the admin session's


def test_admin_faults_queue_the_next_answers(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given faults queued over HTTP
    faults = [{"code": 30003}, {"httpStatus": 503}, {"nonJson": True}]
    response = admin.post(f"{emulator.base_url}/_emulator/faults", json={"next": faults}, timeout=5)
    assert response.json() == {"ok": True}
    # When three calls are sent
    statuses = [get(session, emulator, build_query(sequence=str(i))) for i in (1, 2, 3)]
    # Then they get those faults in order
    assert statuses[0].json()["Code"] == 30003
    assert statuses[1].status_code == 503
    assert not statuses[2].text.startswith("{")


def test_admin_faults_random_and_clear(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given random faults that always fire, set over HTTP
    url = f"{emulator.base_url}/_emulator/faults"
    admin.post(url, json={"random": [{"code": 42004}], "probability": 1.0, "seed": 1}, timeout=5)
    first = code_of(session, emulator, sequence="1")
    # When they are cleared over HTTP
    admin.post(url, json={"clear": True}, timeout=5)
    # Then calls succeed again
    assert (first, code_of(session, emulator, sequence="2")) == (42004, 0)


def test_admin_drop_and_slow_faults_parse(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given a slow applied fault and a drop queued over HTTP
    url = f"{emulator.base_url}/_emulator/faults"
    admin.post(url, json={"next": [{"delay": 0.05, "apply": True}, {"drop": True}]}, timeout=5)
    # When two calls are sent
    slow = code_of(session, emulator, sequence="1")
    # Then the first is a late success and the second is dropped
    assert slow == 0
    with pytest.raises(requests.ConnectionError):
        get(session, emulator, build_query(sequence="2"))


def test_admin_rejects_a_bad_fault(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given a fault with an unknown field
    # When it is posted
    response = admin.post(f"{emulator.base_url}/_emulator/faults", json={"next": [{"boom": 1}]}, timeout=5)
    # Then it is a 400 and nothing is queued
    assert response.status_code == 400
    assert code_of(session, emulator) == 0


def test_admin_latency(emulator: ZegoEmulator, session: requests.Session, admin: requests.Session) -> None:
    # Given latency set to 0.3 s over HTTP
    admin.post(f"{emulator.base_url}/_emulator/latency", json={"seconds": 0.3}, timeout=5)
    # When a client waits only 0.1 s
    # Then it times out
    with pytest.raises(requests.ReadTimeout):
        get(session, emulator, build_query(), timeout=0.1)


def test_admin_secret_rotates_without_echoing_it(
    emulator: ZegoEmulator, session: requests.Session, admin: requests.Session
) -> None:
    # Given a new secret posted over HTTP
    new_secret = "fedcba9876543210fedcba9876543210"
    url = f"{emulator.base_url}/_emulator/secret"
    response = admin.post(url, json={"serverSecret": new_secret}, timeout=5)
    # When calls are signed with the old and new secrets
    old = code_of(session, emulator, sequence="1")
    new = code_of(session, emulator, sequence="2", secret=new_secret)
    # Then the rotation took effect and the answer does not contain the secret
    assert (old, new) == (100000005, 0)
    assert new_secret not in response.text
    assert SECRET not in response.text


def test_admin_reset(emulator: ZegoEmulator, session: requests.Session, admin: requests.Session) -> None:
    # Given a recorded call
    code_of(session, emulator)
    # When reset is posted over HTTP
    admin.post(f"{emulator.base_url}/_emulator/reset", timeout=5)
    # Then the records are empty
    assert emulator.calls() == []
    assert emulator.resumed_stream_ids() == set()


def test_admin_jitter_and_connection_setup_take_effect(
    emulator: ZegoEmulator, admin: requests.Session
) -> None:
    # Given jitter (seed 8) and a connection set-up delay posted over HTTP
    base = emulator.base_url
    admin.post(f"{base}/_emulator/jitter", json={"seconds": 0.1, "seed": 8}, timeout=5)
    admin.post(f"{base}/_emulator/connection-setup", json={"seconds": 0.2}, timeout=5)
    # When a client opens a new connection and calls
    with requests.Session() as client:
        assert code_of(client, emulator) == 0
    # Then its call drew its jitter from seed 8 and waited for the set-up
    [record] = emulator.calls()
    assert record.jitter == random.Random(8).uniform(0.0, 0.1)
    assert record.connection_setup_delay == 0.2


# ----- where a call counts ------------------------------------------------------------------------


def test_a_call_counts_where_it_reached_the_host_however_late_its_thread_reads_it(
    emulator: ZegoEmulator, session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose connection threads start 0.3 s late (a busy machine)
    from zegosim.zego import server

    original = server._Handler.setup

    def late_setup(handler: Any) -> None:
        time.sleep(0.3)
        original(handler)

    monkeypatch.setattr(server._Handler, "setup", late_setup)
    # When a call is sent on a new connection
    sent = time.monotonic()
    assert get(session, emulator, build_query(sequence="1")).json()["Code"] == 0
    # Then it counts where it reached the host (the kernel's receive stamp), not 0.3 s later
    (call,) = emulator.calls()
    assert call.arrival - sent < 0.1


def test_a_kernel_stamp_is_converted_with_a_tight_pair_of_clock_readings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given clocks whose first pair of readings straddles a 50 ms pause (the thread lost the CPU)
    from zegosim.zego import server

    monotonic = iter([100.0, 100.05, 200.0, 200.0001])
    wall = iter([1000.0, 1100.0])
    monkeypatch.setattr(server.time, "monotonic", lambda: next(monotonic))
    monkeypatch.setattr(server.time, "time", lambda: next(wall))
    # When a stamp taken 1 s before the second pair's wall reading is converted
    converted = server._monotonic_of(1099.0)
    monkeypatch.undo()
    # Then the tight pair is the one used: the stamp is 1 s before it, not moved by the pause
    assert converted == pytest.approx(199.00005, abs=1e-6)
