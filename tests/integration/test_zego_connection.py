"""Opening ZEGO's connection ahead of the first call (ZegoClient.prepare), against the emulator:
its set-up (TCP and TLS handshakes, the longest wait of a cold start when ZEGO is far) overlaps
the secret's loading instead of following it."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from zego_resume.adapters.zego_client import ZegoClient
from zego_resume.ports import TransportError, ZegoCredentials
from zegosim.zego import ZegoEmulator

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

APP_ID = 1234567890
SETUP_SECONDS = 1.0  # the emulated handshake: far longer than a loopback call on a loaded machine


class Turns:
    """A call's turn that is always granted, counting how often it was taken."""

    def __init__(self) -> None:
        self.taken = 0

    def __call__(self) -> bool:
        self.taken += 1
        return True

    def written(self, at: float | None) -> None:
        pass


@pytest.fixture
def zego() -> Iterator[tuple[ZegoEmulator, ZegoCredentials]]:
    server_secret = secrets.token_hex(16)
    with ZegoEmulator(APP_ID, server_secret, connection_setup_delay=SETUP_SECONDS) as emulator:
        yield emulator, ZegoCredentials(APP_ID, server_secret)


def _resume(client: ZegoClient, credentials: ZegoCredentials, turn: Turns) -> float:
    started = time.monotonic()
    answer = client.resume(credentials, ["stream-a"], 1, deadline=time.monotonic() + 10, turn=turn)
    assert answer.code == 0
    return time.monotonic() - started


def test_a_prepared_connection_has_done_its_set_up_when_the_first_call_comes(
    zego: tuple[ZegoEmulator, ZegoCredentials],
) -> None:
    emulator, credentials = zego
    client = ZegoClient(emulator.base_url)
    # Given a client that prepared its connection while the environment did something else
    # (loaded the secret) for longer than the handshake takes
    client.prepare()
    time.sleep(SETUP_SECONDS + 0.2)
    # Then the connection is open and no call was made
    assert emulator.connection_count() == 1
    assert emulator.calls() == []
    # When the first call goes out
    turn = Turns()
    elapsed = _resume(client, credentials, turn)
    # Then it used that connection and did not wait for a handshake
    assert emulator.connection_count() == 1
    assert len(emulator.calls()) == 1
    assert turn.taken == 1
    assert elapsed < SETUP_SECONDS


def test_without_preparing_the_first_call_waits_for_the_handshake(
    zego: tuple[ZegoEmulator, ZegoCredentials],
) -> None:
    # The contrast that gives the test above its meaning: the emulator makes a new connection's
    # first request wait for the handshake.
    emulator, credentials = zego
    client = ZegoClient(emulator.base_url)
    time.sleep(0.2)
    assert _resume(client, credentials, Turns()) >= SETUP_SECONDS
    assert emulator.connection_count() == 1


def test_a_call_made_while_the_connection_is_being_prepared_waits_for_it_instead_of_opening_another(
    zego: tuple[ZegoEmulator, ZegoCredentials],
) -> None:
    emulator, credentials = zego
    client = ZegoClient(emulator.base_url)
    # Given a connection still being prepared (the secret was in the cache already, say)
    client.prepare()
    # When the first call comes at once
    _resume(client, credentials, Turns())
    # Then it went over the prepared connection: one handshake, not two
    assert emulator.connection_count() == 1
    assert len(emulator.calls()) == 1


def test_a_connection_that_cannot_be_prepared_is_left_for_the_call_to_meet_and_report() -> None:
    # Given a port nobody listens on
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    client = ZegoClient(f"http://127.0.0.1:{port}")
    # When the connection is prepared, nothing is raised
    client.prepare()
    # And the call meets the failure itself, as a transport error to retry
    with pytest.raises(TransportError) as raised:
        client.resume(
            ZegoCredentials(APP_ID, "0" * 32), ["stream-a"], 1, deadline=time.monotonic() + 5, turn=Turns()
        )
    assert raised.value.code == "ConnectionError"
