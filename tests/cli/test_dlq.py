"""`zego-resume dlq list` and `dlq redrive` against moto in server mode: counting leaves the
dead letters where they are; a redrive puts each body back on the source queue exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumectl.cli import main
from zegosim.aws import Stack, drain

from .conftest import hidden_messages, put_dead_letter, visible_messages

pytestmark = pytest.mark.enable_socket

TIMEOUT_BODY = {"streamIds": ["stream-a"], "sequence": 1764410000123, "requestId": "case-1"}


def _fill(stack: Stack) -> list[str]:
    """Five dead letters: three 30004s, two InvalidRequests with different reasons. Their bodies."""
    bodies: list[tuple[dict[str, Any] | str, str, str | None]] = [
        (TIMEOUT_BODY, "30004", None),
        ({"streamIds": ["stream-b"], "sequence": 2}, "30004", None),
        ({"streamIds": ["stream-c"], "sequence": 3}, "30004", None),
        ('{"streamIds": []}', "InvalidRequest", "EmptyStreamIds"),
        ("not json at all " + "x" * 400, "InvalidRequest", "NotAnObject"),
    ]
    for body, code, reason in bodies:
        put_dead_letter(stack, body, code, reason)
    return [body if isinstance(body, str) else json.dumps(body) for body, _, _ in bodies]


def test_dlq_list_counts_by_error_code_and_leaves_every_message(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five dead letters under two error codes
    _fill(stack)
    before = visible_messages(stack.dead_letter_queue_url)

    # When they are listed as JSON, with two samples per code
    exit_code = main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url, "--samples", "2", "--json"])

    # Then the counts are by ErrorCode, biggest first, with ErrorReason counts where present
    assert exit_code == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["approximateNumberOfMessages"] == 5
    assert listing["seen"] == 5
    assert listing["complete"] is True
    codes = {group["errorCode"]: group for group in listing["errorCodes"]}
    assert [group["errorCode"] for group in listing["errorCodes"]] == ["30004", "InvalidRequest"]
    assert codes["30004"]["count"] == 3
    assert codes["30004"]["errorReasons"] == {}
    assert codes["InvalidRequest"]["count"] == 2
    assert codes["InvalidRequest"]["errorReasons"] == {"EmptyStreamIds": 1, "NotAnObject": 1}
    # And samples are bodies, at most two per code, long ones cut to about 200 characters
    assert len(codes["30004"]["samples"]) == 2
    assert all(len(sample) <= 201 for sample in codes["InvalidRequest"]["samples"])
    assert any(sample.endswith("…") for sample in codes["InvalidRequest"]["samples"])
    # And every message is still in the DLQ, visible again at once
    assert visible_messages(stack.dead_letter_queue_url) == before == 5
    assert hidden_messages(stack.dead_letter_queue_url) == 0


def test_dlq_list_human_output_says_messages_were_hidden_briefly(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given dead letters
    _fill(stack)

    # When they are listed for a person
    exit_code = main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url, "--peek-seconds", "10"])

    # Then the table shows each code with its count, reasons and a sample
    assert exit_code == 0
    out = capsys.readouterr().out
    assert "ApproximateNumberOfMessages: 5" in out
    assert "hidden for at most 10s" in out
    assert any(line.split() == ["30004", "3"] for line in out.splitlines())
    assert any(line.split() == ["InvalidRequest", "2"] for line in out.splitlines())
    assert "ErrorReason EmptyStreamIds: 1" in out
    assert 'sample: {"streamIds": ["stream-a"], "sequence": 1764410000123, "requestId": "case-1"}' in out
    # And a second listing sees the same five: nothing was consumed
    assert main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["seen"] == 5


def test_dlq_list_of_an_empty_queue(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # When an empty DLQ is listed
    exit_code = main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url])

    # Then it says so
    assert exit_code == 0
    assert "no messages" in capsys.readouterr().out


def test_dlq_list_of_a_missing_queue_names_the_error_code(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the DLQ URL points at no queue
    exit_code = main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url + "-missing"])

    # Then exit 1, the AWS error code on one line, no traceback
    assert exit_code == 1
    captured = capsys.readouterr()
    assert "AWS.SimpleQueueService.NonExistentQueue" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_dlq_redrive_moves_every_body_back_and_empties_the_dlq(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five dead letters
    bodies = sorted(_fill(stack))

    # When they are redriven (moto has no StartMessageMoveTask: the CLI falls back to copying)
    exit_code = main(
        ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url, "--json"]
    )

    # Then all five moved by copy, and the report says why
    assert exit_code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "copy"
    assert report["moved"] == 5
    assert report["failed"] == 0
    assert "StartMessageMoveTask" in report["fellBackBecause"]
    # And the DLQ is empty, the source queue holds the same bodies without the error attributes
    assert visible_messages(stack.dead_letter_queue_url) == 0
    assert hidden_messages(stack.dead_letter_queue_url) == 0
    moved = drain(stack.queue_url)
    assert sorted(m["body"] for m in moved) == bodies
    assert all(m["attributes"] == {} for m in moved)


def test_dlq_redrive_dry_run_moves_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given five dead letters
    _fill(stack)

    # When a redrive is only rehearsed
    exit_code = main(
        [
            "dlq",
            "redrive",
            "--dlq-url",
            stack.dead_letter_queue_url,
            "--queue-url",
            stack.queue_url,
            "--dry-run",
            "--json",
        ]
    )

    # Then it reports what would move, and nothing moved
    assert exit_code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dryRun"] is True
    assert report["wouldMove"] == 5
    assert report["moved"] == 0
    assert visible_messages(stack.dead_letter_queue_url) == 5
    assert drain(stack.queue_url) == []


def test_dlq_redrive_max_moves_only_that_many(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # Given five dead letters
    _fill(stack)

    # When at most two are redriven
    exit_code = main([*_redrive(stack), "--max", "2"])

    # Then two moved and three stay in the DLQ, visible
    assert exit_code == 0
    assert "moved 2 message(s)" in capsys.readouterr().out
    assert len(drain(stack.queue_url)) == 2
    assert visible_messages(stack.dead_letter_queue_url) == 3


def test_dlq_redrive_keeps_a_message_the_source_queue_refuses(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a dead letter bigger than the source queue's maximum message size (the DLQ takes more)
    put_dead_letter(stack, "x" * 300_000, "InvalidRequest", "NotAnObject")
    put_dead_letter(stack, TIMEOUT_BODY, "30004")

    # When the DLQ is redriven by copy
    exit_code = main([*_redrive(stack), "--force-copy", "--json"])

    # Then the small one moved, the big one stays in the DLQ (visible again), and the exit is 1
    assert exit_code == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["moved"] == 1
    assert report["failed"] == 1
    assert "not moved" in captured.err
    assert [json.loads(m["body"]) for m in drain(stack.queue_url)] == [TIMEOUT_BODY]
    assert visible_messages(stack.dead_letter_queue_url) == 1


def test_dlq_redrive_to_a_missing_queue_moves_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given dead letters
    _fill(stack)

    # When the destination queue does not exist
    exit_code = main(
        ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url + "-gone"]
    )

    # Then the command fails with the error code, and the DLQ is untouched
    assert exit_code == 1
    err = capsys.readouterr().err
    assert "AWS.SimpleQueueService.NonExistentQueue" in err
    assert "Traceback" not in err
    assert visible_messages(stack.dead_letter_queue_url) == 5


def _redrive(stack: Stack) -> list[str]:
    return ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]
