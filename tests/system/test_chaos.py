"""Chaos: hundreds of decisions through the Lambda poller while ZEGO fails a quarter of the calls,
in every way it can. Afterwards every stream id is resumed, or in the DLQ with its reason; none
is lost, and ZEGO never saw a Sequence that did not rise.

Sized to prove that and no more: 300 decisions make several hundred calls, a quarter of them
faulted (every kind of fault at least three times), and redeliveries come back after 3 s."""

from __future__ import annotations

import random
from collections import Counter

import pytest

import app
from zegosim.aws import dead_lettered_stream_ids, drain
from zegosim.lambda_runtime import SqsPoller
from zegosim.zego import Fault

from .conftest import Local, own_emulator, send_bodies, set_visibility_timeout

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket, pytest.mark.timeout(300)]

REQUESTS = 300
# What ZEGO does to a quarter of the calls. 30002 is rare: each one rightly pauses every call
# for a second, and a real 30002 is the emulator's own answer when pacing fails.
FAULTS = [
    Fault.of_code(30003),
    Fault.of_code(42004),
    Fault.of_code(100000015),
    Fault.http(503),
    Fault.http(500),
    Fault.slow(0.6, apply=True),  # applied, but answered after the client gave up
    Fault.slow(0.6, apply=False),
    Fault.dropped(),
    Fault.dropped(apply=True),  # applied, then the connection dropped
    Fault.garbage(),
]
FAULT_PROBABILITY = 0.25
# Draining takes ~30 s here; the poller gives up (saying what is left) well before the test's limit.
DRAIN_SECONDS = 150


def test_hundreds_of_decisions_under_faults_lose_nothing(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 300 requests of 1-60 ids, each with its own sequence
    rng = random.Random(20261129)
    requests = [
        {
            "streamIds": [f"chaos-{number}-{n}" for n in range(rng.randint(1, 60))],
            "sequence": 1764410000000 + 100 * number,
            "requestId": f"chaos-{number}",
        }
        for number in range(REQUESTS)
    ]
    expected = {stream_id for request in requests for stream_id in request["streamIds"]}
    set_visibility_timeout(local, 3)
    monkeypatch.setenv("ZEGO_READ_TIMEOUT_SECONDS", "0.3")

    with own_emulator(local, monkeypatch, calls_per_second=100) as zego:
        # ... and a ZEGO failing about a quarter of the calls, a few of them with 30002
        zego.inject_randomly([*FAULTS * 20, Fault.of_code(30002)], FAULT_PROBABILITY, seed=7)
        send_bodies(local, requests)

        # When the Lambda poller drains the queue
        poller = SqsPoller(
            app.lambda_handler,
            local.stack.queue_url,
            local.stack.queue_arn,
            function_timeout=10,
            environment=local.environment,
        )
        stats = poller.run_until_empty(idle_polls=2, max_seconds=DRAIN_SECONDS)

        # Then every id is resumed at ZEGO or dead-lettered with a reason, and none is lost
        letters = local.dead_letters()
        dead = dead_lettered_stream_ids(letters)
        resumed = zego.resumed_stream_ids()
        assert expected - resumed - set(dead) == set()
        bare = [letter for letter in letters if not letter["attributes"].get("ErrorCode")]
        assert not bare, f"{len(bare)} letters without a reason; {stats}"
        assert drain(local.stack.queue_url, local.environment) == []
        # ... the faults really happened, and so did retries
        faulted = [call for call in zego.calls() if call.fault is not None]
        assert len(faulted) > 0.2 * len(zego.calls())
        kinds = Counter(call.fault for call in faulted)
        assert min(kinds[fault] for fault in FAULTS) >= 3, kinds
        assert stats.received >= REQUESTS
        # ... and ZEGO never saw a Sequence that did not rise for a stream within its window,
        # so nothing was applied out of order, and each stream ended at or after its decision
        assert zego.stale() == []
        for request in requests:
            for stream_id in request["streamIds"]:
                state = zego.stream_state(stream_id)
                if stream_id in resumed:
                    assert state is not None
                    assert state[1] >= request["sequence"]
