"""``python -m zegosim.zego``: its settings, and serving until SIGTERM. Errors are checked
in-process (they stop before any socket); serving runs the module."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from zegosim.zego.cli import main

from .signed_calls import APP_ID, SECRET, build_query

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_main(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """main() in-process: its exit status, stdout and stderr."""
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's errors
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ----- errors, in-process and without sockets ----------------------------------------------------


@pytest.mark.disable_socket
@pytest.mark.parametrize("option", ["--latency", "--jitter-ms", "--connection-setup-ms"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_delay_must_be_a_finite_non_negative_number(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    # Given a delay that cannot be slept
    # When the emulator is started with it
    status, _, err = run_main(capsys, ["--app-id", str(APP_ID), option, value])
    # Then argparse refuses it, naming the option
    assert status == 2
    assert f"argument {option}" in err


# ----- listening ---------------------------------------------------------------------------------


@contextmanager
def emulator_process(
    args: list[str], environ: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """`python -m zegosim.zego` on a free port: the process, its base URL and its admin token."""
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
        token_line = process.stdout.readline().strip()
        yield process, base_url, token_line
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
    # Given the emulator started as a process, its secret in the environment, with jitter and set-up
    environ = {**without_secret_variable(), "ZEGO_SERVER_SECRET": SECRET}
    knobs = ["--jitter-ms", "20", "--jitter-seed", "5", "--connection-setup-ms", "10"]
    with emulator_process(knobs, environ) as (process, base_url, token_line):
        # When its admin API is asked for its state with and without the printed token, a call
        # signed with the secret is made, and it is sent SIGTERM
        token = token_line.removeprefix("admin-token ")
        url = f"{base_url}/_emulator/state"
        refused = requests.get(url, timeout=5)
        state = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
        code = requests.get(f"{base_url}/?{signed_now(SECRET)}", timeout=5).json()["Code"]
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=5)
        out, err = process.communicate()
    # Then it printed its loopback URL then its token, served with the knobs set, and stopped
    # cleanly without printing the secret
    assert base_url.startswith("http://127.0.0.1:")
    assert re.fullmatch(r"admin-token [A-Za-z0-9_-]{32,}", token_line)
    assert refused.status_code == 401
    assert (state["calls"], state["networkJitterSeconds"], state["jitterSeed"]) == (0, 0.02, 5)
    assert state["connectionSetupSeconds"] == 0.01
    assert code == 0
    assert returncode == 0
    assert SECRET not in out + err
