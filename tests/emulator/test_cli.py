"""``python -m zegosim.zego``: serving until SIGTERM, as a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from .signed_calls import APP_ID, SECRET, build_query

REPO_ROOT = Path(__file__).resolve().parents[2]


# ----- listening ---------------------------------------------------------------------------------


@contextmanager
def emulator_process(args: list[str], environ: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m zegosim.zego` on a free port: the process and its base URL."""
    env = {**environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "zegosim.zego", "--app-id", str(APP_ID), "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        yield process, base_url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def signed_now(secret: str) -> str:
    """A query signed for the process's real clock."""
    return build_query(secret=secret, timestamp=int(time.time()))


def without_secret_variable() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ZEGO_SERVER_SECRET"}


@pytest.mark.enable_socket
def test_command_line_serves_until_sigterm() -> None:
    # Given the emulator started as a process, its secret in the environment
    environ = {**without_secret_variable(), "ZEGO_SERVER_SECRET": SECRET}
    with emulator_process([], environ) as (process, base_url):
        # When its admin API is asked for its state, a call signed with the secret is made, and
        # it is sent SIGTERM
        state = requests.get(f"{base_url}/_emulator/state", timeout=5).json()
        code = requests.get(f"{base_url}/?{signed_now(SECRET)}", timeout=5).json()["Code"]
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=5)
        out, err = process.communicate()
    # Then it printed its loopback URL, served, and stopped cleanly without printing the secret
    assert base_url.startswith("http://127.0.0.1:")
    assert state["calls"] == 0
    assert code == 0
    assert returncode == 0
    assert SECRET not in out + err
