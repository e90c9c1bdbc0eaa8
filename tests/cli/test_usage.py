"""Arguments: every command has --help, a missing or bad argument is one line and exit 2, and the
console script is installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resumectl.cli import main
from zegosim.aws import Stack

pytestmark = pytest.mark.enable_socket

ZEGO_RESUME = Path(sys.executable).parent / "zego-resume"
DLQ = "https://sqs.us-east-1.amazonaws.com/123456789012/dlq"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/queue"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], "{dlq,send}"),
        (["dlq"], "{list,redrive}"),
        (["dlq", "list"], "hides"),
        (["dlq", "redrive"], "StartMessageMoveTask"),
        (["send"], "--event-bus"),
    ],
)
def test_every_command_has_help(argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    # When help is asked for
    exit_code = main([*argv, "--help"])

    # Then it is printed, and the exit is 0
    assert exit_code == 0
    assert expected in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        ([], "required: {dlq,send}"),
        (["dlq"], "required: {list,redrive}"),
        (["dlq", "list"], "--dlq-url"),
        (["dlq", "redrive", "--dlq-url", DLQ], "--queue-url"),
        (["send", "--stream-id", "s"], "one of the arguments --queue-url --event-bus --at is required"),
        (["send", "--queue-url", QUEUE], "one of the arguments --stream-id --stream-ids-file is required"),
        (["dlq", "list", "--dlq-url", DLQ, "--samples", "many"], "is not a whole number"),
        (["dlq", "list", "--dlq-url", DLQ, "--peek-seconds", "0"], "less than 1"),
        (["dlq", "list", "--dlq-url", DLQ, "--peek-seconds", "43201"], "more than 43200"),
        (["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE, "--max", "0"], "less than 1"),
        (["dlq", "list", "--dlq-url", "not-a-url"], "argument --dlq-url: not a URL: 'not-a-url'"),
        (["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", "not-a-url"], "--queue-url: not a URL"),
        (["send", "--queue-url", "not-a-url", "--stream-id", "s"], "--queue-url: not a URL"),
        (["dlq", "list", "--dlq-url", "ftp://host/1/q"], "not a URL"),
        (["dlq", "list", "--dlq-url", "https://host"], "not a URL"),
        (["dlq", "list", "--dlq-url", "https://host/1/q\x1b[2J"], "not a URL: 'https://host/1/q\\x1b[2J'"),
        (["send", "--at", "tomorrow", "--stream-id", "s"], "not an ISO 8601 time"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_a_missing_or_bad_argument_is_one_line_and_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the command line is incomplete or wrong
    exit_code = main(argv)

    # Then argparse's exit 2, with one line on stderr that says what is wrong
    assert exit_code == 2
    err = capsys.readouterr().err
    assert complaint in err
    assert len(err.strip().splitlines()) == 1


def test_no_region_is_a_runtime_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a shell with no AWS region anywhere
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))

    # When a command needs AWS
    exit_code = main(["dlq", "list", "--dlq-url", "https://sqs.invalid/1/q"])

    # Then exit 1, naming botocore's error and both variables that set a region
    assert exit_code == 1
    err = capsys.readouterr().err
    assert "NoRegionError" in err
    assert "set AWS_REGION or AWS_DEFAULT_REGION" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("region", "default_region"),
    [
        ("us-east-1", None),  # Lambda's variable alone
        (None, "us-east-1"),  # botocore's variable alone
        ("us-east-1", "eu-west-1"),  # both: AWS_REGION wins, as in the AWS CLI and Lambda
    ],
)
def test_the_region_comes_from_aws_region_or_aws_default_region(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    region: str | None,
    default_region: str | None,
) -> None:
    # Given a DLQ in us-east-1 (moto keeps each region's queues apart), and the region variables
    for name, value in (("AWS_REGION", region), ("AWS_DEFAULT_REGION", default_region)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    # When the DLQ is listed
    exit_code = main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url])

    # Then the command found it: it asked us-east-1
    assert exit_code == 0, capsys.readouterr().err


def test_help_names_both_region_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "AWS_REGION or AWS_DEFAULT_REGION" in " ".join(capsys.readouterr().out.split())


def test_the_console_script_is_installed() -> None:
    # When the installed entry point is run
    completed = subprocess.run(  # noqa: S603 - a fixed path inside this virtualenv
        [str(ZEGO_RESUME), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=os.environ.copy(),
    )

    # Then it answers with its usage
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: zego-resume")
