"""The watchdog that ends a ZEGO call by its deadline, body included, over real sockets: it cuts
the calls still running when their time is up, leaves the finished ones alone, and does not wake
up for each finished call."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from zego_resume.adapters.zego_client import _Watchdog

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]


@pytest.fixture
def wakeups(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the watchdog's thread looked at the clock: once each time it woke up."""
    seen: list[float] = []
    real = time.monotonic

    def monotonic() -> float:
        now = real()
        if threading.current_thread().name == "zego-watchdog":
            seen.append(now)
        return now

    monkeypatch.setattr(time, "monotonic", monotonic)
    return seen


def _cut(peer: socket.socket) -> bool:
    """Whether the other end was shut down (reading it gives end of file at once)."""
    peer.settimeout(0.05)
    try:
        return peer.recv(1) == b""
    except TimeoutError:
        return False


def test_finished_calls_are_left_alone_and_a_running_one_is_cut_at_its_deadline(wakeups: list[float]) -> None:
    watchdog = _Watchdog()
    pairs = [socket.socketpair() for _ in range(31)]
    try:
        # Given 30 calls that finished at once, their deadlines spread over the next 0.3 s, and
        # one still running whose deadline comes after all of them
        start = time.monotonic()
        for index, (ours, _) in enumerate(pairs[:30]):
            watchdog.release(watchdog.watch(ours, start + 0.01 * (index + 1)))
        running = watchdog.watch(pairs[30][0], start + 0.5)
        # When its deadline has passed (polled: a loaded machine may run the watchdog late)
        give_up = time.monotonic() + 10
        while not running.fired and time.monotonic() < give_up:
            time.sleep(0.05)
        # Then the running call was cut, and none of the finished ones
        assert running.fired
        assert _cut(pairs[30][1])
        assert not any(_cut(theirs) for _, theirs in pairs[:30])
        # And the watchdog woke up a few times, not once for each finished call's deadline
        assert len(wakeups) <= 5
    finally:
        for ours, theirs in pairs:
            ours.close()
            theirs.close()
