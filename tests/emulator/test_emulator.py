"""``ZegoEmulator`` as a front, never started: the knobs, the jitter draws, where the arrival is
taken, the admin API's authorisation. No socket: the server's calls are made by hand."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from zegosim.zego import Fault, ZegoEmulator
from zegosim.zego.server import handle_admin

from .fake_clock import FakeClock
from .signed_calls import APP_ID, NOW, SECRET, build_query

pytestmark = pytest.mark.disable_socket


def make_emulator(**options: Any) -> ZegoEmulator:
    options.setdefault("clock", FakeClock(NOW))
    options.setdefault("monotonic", FakeClock(100.0))
    return ZegoEmulator(APP_ID, SECRET, **options)


def arrive(emulator: ZegoEmulator, **query: Any) -> int | None:
    """One API call as the server hands it over: drawn, then received (the sleep is the server's)."""
    jitter = emulator.draw_network_delay()
    decision, _ = emulator.receive_api_call(build_query(**query), jitter=jitter)
    return decision.record.code


# ----- where the arrival is taken ----------------------------------------------------------------


def test_the_rate_window_counts_a_call_at_arrival_not_after_its_latency() -> None:
    # Given a limit of 1 call a second and answers held back 5 s
    monotonic = FakeClock(100.0)
    emulator = make_emulator(rate_limit=1, latency=5.0, monotonic=monotonic)
    # When a call arrives at 100.0, is handed its latency, and another arrives at 101.0
    decision, latency = emulator.receive_api_call(build_query(sequence="1"))
    monotonic.advance(1.0)
    second, _ = emulator.receive_api_call(build_query(sequence="2"))
    # Then the first was recorded and counted at 100.0, before its 5 s answer delay, so the
    # second, a whole second later, fits in the budget (it would not if counted at 105.0)
    assert latency == 5.0
    assert decision.record.arrival == 100.0
    assert second.record.code == 0
    assert emulator.max_calls_in_any_window() == 1


# ----- network jitter ----------------------------------------------------------------------------


def test_jitter_draws_are_uniform_from_the_seeded_generator() -> None:
    # Given jitter up to 0.25 s with seed 7, and Python's generator seeded the same
    emulator = make_emulator(network_jitter=0.25, jitter_seed=7)
    reference = random.Random(7)
    # When ten calls are read off their connections
    draws = [emulator.draw_network_delay() for _ in range(10)]
    # Then each is late by the reference's uniform draw, within 0..0.25 s
    assert draws == [reference.uniform(0.0, 0.25) for _ in range(10)]
    assert all(0.0 <= d <= 0.25 for d in draws)
    assert len(set(draws)) == 10


def test_no_jitter_means_no_delay() -> None:
    # Given an emulator with the default jitter
    emulator = make_emulator()
    # When calls are read
    # Then none is held back
    assert [emulator.draw_network_delay() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_each_calls_jitter_and_setup_delay_are_recorded() -> None:
    # Given an emulator with jitter
    emulator = make_emulator(network_jitter=0.5, jitter_seed=3)
    # When a call drawn late arrives, having waited for its connection's set-up
    jitter = emulator.draw_network_delay()
    emulator.receive_api_call(build_query(), jitter=jitter, connection_setup_delay=0.2)
    # Then its record says how late it was and how long its connection took to set up
    [record] = emulator.calls()
    assert (record.jitter, record.connection_setup_delay) == (jitter, 0.2)
    assert record.jitter == random.Random(3).uniform(0.0, 0.5)


def test_a_call_is_in_flight_between_its_draw_and_its_arrival() -> None:
    # Given an emulator with jitter
    emulator = make_emulator(network_jitter=0.5)
    # When two calls are drawn and one of them arrives
    emulator.draw_network_delay()
    emulator.draw_network_delay()
    in_flight_before = emulator.calls_in_flight()
    emulator.receive_api_call(build_query())
    # Then two were in flight, and one still is
    assert (in_flight_before, emulator.calls_in_flight()) == (2, 1)
    assert emulator.state_summary()["inFlight"] == 1


def test_setting_the_jitter_restarts_the_draws_from_the_seed() -> None:
    # Given an emulator without jitter
    emulator = make_emulator()
    # When jitter is set with a seed, two draws made, then set again without a seed
    emulator.set_network_jitter(1.0, seed=42)
    first = [emulator.draw_network_delay() for _ in range(2)]
    emulator.set_network_jitter(1.0)
    again = [emulator.draw_network_delay() for _ in range(2)]
    # Then both runs draw the same, from seed 42
    reference = random.Random(42)
    assert first == again == [reference.uniform(0.0, 1.0) for _ in range(2)]


def test_reset_restarts_the_jitter_draws_but_keeps_the_settings() -> None:
    # Given an emulator with jitter, latency and set-up delay, that has drawn once
    emulator = make_emulator(network_jitter=0.3, jitter_seed=9, latency=0.1, connection_setup_delay=0.2)
    first = emulator.draw_network_delay()
    # When it is reset
    emulator.reset()
    # Then it draws from the seed again, and keeps its settings
    assert emulator.draw_network_delay() == first
    summary = emulator.state_summary()
    assert (summary["networkJitterSeconds"], summary["jitterSeed"]) == (0.3, 9)
    assert (summary["latencySeconds"], summary["connectionSetupSeconds"]) == (0.1, 0.2)


@pytest.mark.parametrize("seconds", [-0.001, float("nan"), float("inf")])
def test_knobs_refuse_what_cannot_be_slept(seconds: float) -> None:
    # Given an emulator
    emulator = make_emulator()
    # When a knob is set to a negative, NaN or infinite number of seconds
    # Then it is refused, at construction or later
    for setter in (emulator.set_latency, emulator.set_network_jitter, emulator.set_connection_setup_delay):
        with pytest.raises(ValueError, match="finite number >= 0"):
            setter(seconds)
    for option in ("latency", "network_jitter", "connection_setup_delay"):
        with pytest.raises(ValueError, match=option):
            make_emulator(**{option: seconds})


# ----- connection set-up -------------------------------------------------------------------------


def test_each_new_connection_is_counted_and_told_its_setup_delay() -> None:
    # Given an emulator whose connections take 0.4 s to set up
    emulator = make_emulator(connection_setup_delay=0.4)
    # When two connections open, the delay is changed, and a third opens
    delays = [emulator.connection_opened(), emulator.connection_opened()]
    emulator.set_connection_setup_delay(0.0)
    delays.append(emulator.connection_opened())
    # Then each was told the delay in force when it opened, and all three are counted
    assert delays == [0.4, 0.4, 0.0]
    assert emulator.connection_count() == 3


# ----- the front's records and reset -------------------------------------------------------------


def test_reset_clears_records_state_and_faults() -> None:
    # Given a call, a stream state, a connection and a queued fault
    emulator = make_emulator()
    emulator.connection_opened()
    arrive(emulator)
    emulator.inject(Fault.of_code(30003))
    # When the emulator is reset
    emulator.reset()
    # Then it is as new, and the next call is not faulted
    assert (emulator.calls(), emulator.stale(), emulator.code_counts()) == ([], [], {})
    assert emulator.stream_state("stream-a") is None
    assert emulator.connection_count() == 0
    assert arrive(emulator, sequence="1") == 0


def test_default_rate_limits_follow_zego() -> None:
    # Given emulators built without a rate limit
    # When they are for production and the test environment
    # Then they allow 20 and 5 calls a second
    assert make_emulator().rate_limit == 20
    assert make_emulator(is_test=True).rate_limit == 5


# ----- the admin token ---------------------------------------------------------------------------


def test_every_emulator_has_its_own_unguessable_admin_token() -> None:
    # Given two emulators
    tokens = [make_emulator().admin_token for _ in range(2)]
    # When their tokens are compared
    # Then they differ and are long enough not to be guessed
    assert tokens[0] != tokens[1]
    assert all(len(token) >= 32 for token in tokens)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no header"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="no token"),
        pytest.param("Bearer wrong", id="wrong token"),
        pytest.param("Basic {token}", id="another scheme"),
        pytest.param("Bearer {token}x", id="token with more"),
        pytest.param("Bearer {token_start}", id="token prefix"),
        pytest.param("Bearer {token}\u00e9", id="not ascii"),
    ],
)
def test_admin_requests_without_the_token_are_unauthorised(authorization: str | None) -> None:
    # Given an emulator, and an Authorization header that does not carry its token
    emulator = make_emulator()
    token = emulator.admin_token
    header = None if authorization is None else authorization.format(token=token, token_start=token[:-1])
    # When it asks for the state, or to reset
    answers = [
        handle_admin(emulator, "GET", "/_emulator/state", header, b""),
        handle_admin(emulator, "POST", "/_emulator/reset", header, b"{}"),
        handle_admin(emulator, "GET", "/_emulator/nowhere", header, b""),
    ]
    # Then each is a 401 asking for a bearer token, and the emulator is unchanged
    assert [a.status for a in answers] == [401, 401, 401]
    assert all(("WWW-Authenticate", 'Bearer realm="zegosim"') in a.headers for a in answers)
    assert all(token not in a.body.decode() for a in answers)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_admin_requests_with_the_token_are_served(scheme: str) -> None:
    # Given an emulator
    emulator = make_emulator()
    # When the state is asked for with its token
    answer = handle_admin(emulator, "GET", "/_emulator/state", f"{scheme} {emulator.admin_token}", b"")
    # Then it is served
    assert answer.status == 200
    assert json.loads(answer.body)["calls"] == 0


def test_admin_jitter_and_connection_setup_are_set_with_the_token() -> None:
    # Given an emulator and its token
    emulator = make_emulator()
    bearer = f"Bearer {emulator.admin_token}"
    # When jitter and set-up delay are posted
    answers = [
        handle_admin(emulator, "POST", "/_emulator/jitter", bearer, b'{"seconds": 0.2, "seed": 4}'),
        handle_admin(emulator, "POST", "/_emulator/connection-setup", bearer, b'{"seconds": 0.3}'),
    ]
    # Then both are taken, and the draws now come from seed 4
    assert [a.status for a in answers] == [200, 200]
    summary = emulator.state_summary()
    assert (summary["networkJitterSeconds"], summary["jitterSeed"], summary["connectionSetupSeconds"]) == (
        0.2,
        4,
        0.3,
    )
    assert emulator.draw_network_delay() == random.Random(4).uniform(0.0, 0.2)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param("jitter", b'{"seconds": "1"}', "seconds must be a number", id="jitter as text"),
        pytest.param("jitter", b'{"seconds": -1}', "network_jitter", id="negative jitter"),
        pytest.param("jitter", b'{"seconds": 1, "seed": 1.5}', "seed must be an integer", id="float seed"),
        pytest.param("connection-setup", b"{}", "seconds must be a number", id="no seconds"),
        pytest.param("latency", b'{"seconds": true}', "seconds must be a number", id="boolean latency"),
        pytest.param("faults", b"{}", "expected one of", id="no fault verb"),
        pytest.param("faults", b'{"next": [{"boom": 1}]}', "unknown fault fields", id="bad fault"),
        pytest.param("secret", b'{"serverSecret": ""}', "serverSecret", id="empty secret"),
        pytest.param("reset", b"[1]", "JSON object", id="not an object"),
        pytest.param("reset", b"{nope", "invalid JSON", id="not JSON"),
    ],
)
def test_admin_refuses_a_bad_body_with_400(path: str, body: bytes, message: str) -> None:
    # Given an emulator and its token
    emulator = make_emulator()
    # When a malformed body is posted
    answer = handle_admin(emulator, "POST", f"/_emulator/{path}", f"Bearer {emulator.admin_token}", body)
    # Then it is a 400 naming the problem, and nothing was changed
    assert answer.status == 400
    assert message in json.loads(answer.body)["error"]
    assert emulator.state_summary()["networkJitterSeconds"] == 0.0
    assert arrive(emulator) == 0
