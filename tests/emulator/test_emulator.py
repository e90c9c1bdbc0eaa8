"""``ZegoEmulator`` as a front, never started: where the arrival is taken, the latency, reset,
the admin API. No socket: the server's calls are made by hand."""

from __future__ import annotations

import json
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
    """One API call as the server hands it over."""
    decision, _ = emulator.receive_api_call(build_query(**query))
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


@pytest.mark.parametrize("seconds", [-0.001, float("nan"), float("inf")])
def test_latency_refuses_what_cannot_be_slept(seconds: float) -> None:
    # Given an emulator
    emulator = make_emulator()
    # When the latency is set to a negative, NaN or infinite number of seconds
    # Then it is refused, at construction or later
    with pytest.raises(ValueError, match="finite number >= 0"):
        emulator.set_latency(seconds)
    with pytest.raises(ValueError, match="latency"):
        make_emulator(latency=seconds)


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


# ----- the admin API ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param("latency", b'{"seconds": "1"}', "seconds must be a number", id="latency as text"),
        pytest.param("latency", b'{"seconds": -1}', "latency", id="negative latency"),
        pytest.param("latency", b"{}", "seconds must be a number", id="no seconds"),
        pytest.param("latency", b'{"seconds": true}', "seconds must be a number", id="boolean latency"),
        pytest.param("faults", b"{}", "expected one of", id="no fault verb"),
        pytest.param("faults", b'{"next": [{"boom": 1}]}', "unknown fault fields", id="bad fault"),
        pytest.param("secret", b'{"serverSecret": ""}', "serverSecret", id="empty secret"),
        pytest.param("reset", b"[1]", "JSON object", id="not an object"),
        pytest.param("reset", b"{nope", "invalid JSON", id="not JSON"),
    ],
)
def test_admin_refuses_a_bad_body_with_400(path: str, body: bytes, message: str) -> None:
    # Given an emulator
    emulator = make_emulator()
    # When a malformed body is posted
    answer = handle_admin(emulator, "POST", f"/_emulator/{path}", body)
    # Then it is a 400 naming the problem, and nothing was changed
    assert answer.status == 400
    assert message in json.loads(answer.body)["error"]
    assert emulator.state_summary()["latencySeconds"] == 0.0
    assert arrive(emulator) == 0
