"""When a request left, as the kernel says: the rate budget's measure of a call's start."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from zego_resume.adapters.zego_client import _send_stamps

pytestmark = [
    pytest.mark.integration,
    pytest.mark.enable_socket,
    pytest.mark.skipif(sys.platform != "linux", reason="Linux's transmit stamps; elsewhere None"),
]


def test_the_stamp_of_a_write_lies_between_the_call_and_its_return_on_every_request() -> None:
    # Given a connected pair of sockets on loopback
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            for _ in range(3):
                # When a request is written, as the ZEGO client writes one, while the thread
                # then sleeps before asking (it lost the CPU, say)
                _send_stamps.prepare(client)
                before = time.time()
                client.sendall(b"GET /?Action=ResumeRTCStreams HTTP/1.1\r\n\r\n")
                after = time.time()
                time.sleep(0.05)
                stamp = _send_stamps.read(client)
                # Then the stamp is when it left, not when the thread asked
                assert stamp is not None
                assert before <= stamp <= after
                peer.recv(4096)


def test_a_socket_with_nothing_written_has_no_stamp() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
        with client, peer:
            _send_stamps.prepare(client)
            assert _send_stamps.read(client) is None
