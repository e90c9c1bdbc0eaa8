"""``python -m zegosim.zego``: where the secret comes from, one-line errors, and serving until
SIGTERM. Errors are checked in-process (they stop before any socket); serving runs the module."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from zegosim.zego.cli import argument_parser, main

from .signed_calls import APP_ID, SECRET, build_query

REPO_ROOT = Path(__file__).resolve().parents[2]
OTHER_SECRET = "fedcba9876543210fedcba9876543210"


def run_main(
    capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """main() in-process: its exit status, stdout and stderr."""
    try:
        status = main(argv, environ={} if environ is None else environ)
    except SystemExit as exit_:  # argparse's own errors
        status = int(exit_.code or 0)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# ----- errors, in-process and without sockets ----------------------------------------------------


@pytest.mark.disable_socket
def test_no_secret_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given neither ZEGO_SERVER_SECRET nor --server-secret-file
    # When the emulator is started
    status, out, err = run_main(capsys, ["--app-id", str(APP_ID)])
    # Then it says, on one line, where the secret should come from, and exits 2
    assert status == 2
    assert out == ""
    assert err == "zegosim.zego: no ServerSecret: set ZEGO_SERVER_SECRET or pass --server-secret-file PATH\n"


@pytest.mark.disable_socket
@pytest.mark.parametrize("form", ["separate", "joined"])
def test_a_secret_on_argv_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], form: str
) -> None:
    # Given the secret passed on the command line, where `ps` would show it
    secret_args = ["--server-secret", SECRET] if form == "separate" else [f"--server-secret={SECRET}"]
    # When the emulator is started
    status, out, err = run_main(capsys, ["--app-id", str(APP_ID), *secret_args])
    # Then it is refused on one line that points at the two safe ways, and never repeats the secret
    assert status == 2
    assert SECRET not in out + err
    assert err.count("\n") == 1
    assert "ZEGO_SERVER_SECRET" in err
    assert "--server-secret-file" in err


@pytest.mark.disable_socket
def test_an_unreadable_secret_file_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a secret file that does not exist
    missing = tmp_path / "no-such-secret"
    # When the emulator is started with it
    status, _, err = run_main(capsys, ["--app-id", str(APP_ID), "--server-secret-file", str(missing)])
    # Then it names the file and the reason on one line
    assert status == 2
    assert err == f"zegosim.zego: cannot read --server-secret-file {missing}: no such file or directory\n"


@pytest.mark.disable_socket
def test_an_empty_secret_file_is_a_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Given a secret file holding only a newline
    empty = tmp_path / "secret"
    empty.write_text("\n")
    # When the emulator is started with it
    status, _, err = run_main(capsys, ["--app-id", str(APP_ID), "--server-secret-file", str(empty)])
    # Then it says the file is empty
    assert status == 2
    assert err == f"zegosim.zego: --server-secret-file {empty} is empty\n"


@pytest.mark.disable_socket
def test_an_impossible_setting_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a rate limit of 0 calls a second
    # When the emulator is started with it
    status, _, err = run_main(
        capsys, ["--app-id", str(APP_ID), "--rate-limit", "0"], {"ZEGO_SERVER_SECRET": SECRET}
    )
    # Then it is refused on one line naming the setting, without the secret
    assert status == 2
    assert err == "zegosim.zego: rate_limit must be >= 1\n"


@pytest.mark.disable_socket
@pytest.mark.parametrize("option", ["--latency", "--jitter-ms", "--connection-setup-ms"])
@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon"])
def test_a_delay_must_be_a_finite_non_negative_number(
    capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    # Given a delay that cannot be slept
    # When the emulator is started with it
    argv = ["--app-id", str(APP_ID), option, value]
    status, _, err = run_main(capsys, argv, {"ZEGO_SERVER_SECRET": SECRET})
    # Then argparse refuses it, naming the option
    assert status == 2
    assert f"argument {option}" in err


@pytest.mark.disable_socket
@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_a_port_must_be_one(capsys: pytest.CaptureFixture[str], port: str) -> None:
    # Given a port no socket can have
    # When the emulator is started on it
    argv = ["--app-id", str(APP_ID), "--port", port]
    status, _, err = run_main(capsys, argv, {"ZEGO_SERVER_SECRET": SECRET})
    # Then argparse refuses it, naming the option, before anything listens
    assert status == 2
    assert "argument --port" in err


@pytest.mark.disable_socket
def test_every_option_is_documented() -> None:
    # Given the command line's options and the emulator's documentation
    actions = argument_parser()._actions
    options = {o for action in actions for o in action.option_strings if o.startswith("--")}
    docs = (REPO_ROOT / "docs" / "emulator.md").read_text()
    # When each is looked for in the documentation
    missing = sorted(o for o in options - {"--help"} if not re.search(rf"`{re.escape(o)}\b", docs))
    # Then none is missing
    assert missing == []


# ----- listening ---------------------------------------------------------------------------------


@contextmanager
def busy_port() -> Iterator[int]:
    """A loopback port some other process is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.enable_socket
def test_a_busy_port_is_a_one_line_error_with_exit_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    # Given a port another process listens on
    with busy_port() as port:
        # When the emulator is started on it
        status, out, err = run_main(
            capsys, ["--app-id", str(APP_ID), "--port", str(port)], {"ZEGO_SERVER_SECRET": SECRET}
        )
    # Then it explains on one line, suggests a way out, prints no URL, and exits 1
    assert status == 1
    assert out == ""
    assert err == (
        f"zegosim.zego: cannot listen on 127.0.0.1:{port}: address already in use "
        "(choose another --port, or --port 0 for any free one)\n"
    )


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


@pytest.mark.enable_socket
def test_the_secret_file_wins_over_the_environment(tmp_path: Path) -> None:
    # Given one secret in a file and another in the environment
    secret_file = tmp_path / "server-secret"
    secret_file.write_text(f"{SECRET}\n")
    environ = {**without_secret_variable(), "ZEGO_SERVER_SECRET": OTHER_SECRET}
    with emulator_process(["--server-secret-file", str(secret_file)], environ) as (process, base_url, _):
        # When calls signed with each are made
        from_file = requests.get(f"{base_url}/?{signed_now(SECRET)}", timeout=5).json()["Code"]
        from_env = requests.get(f"{base_url}/?{signed_now(OTHER_SECRET)}", timeout=5).json()["Code"]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
    # Then the file's secret is the one in use (its trailing newline not part of it)
    assert (from_file, from_env) == (0, 100000005)
