"""`zego-resume dlq list` and `dlq redrive` against moto in server mode: counting leaves the
dead letters where they are; a redrive puts each body back on the source queue exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from resumectl.cli import main
from zegosim.aws import Stack, client, create_stack, drain

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
    # And samples are bodies, at most two per code, long ones cut to about 200 characters, each
    # with its ErrorReason and ErrorMessage
    assert len(codes["30004"]["samples"]) == 2
    bodies = [sample["body"] for sample in codes["InvalidRequest"]["samples"]]
    assert all(len(body) <= 201 for body in bodies)
    assert any(body.endswith("…") for body in bodies)
    assert {sample["errorReason"] for sample in codes["InvalidRequest"]["samples"]} == {
        "EmptyStreamIds",
        "NotAnObject",
    }
    assert codes["30004"]["samples"][0]["errorMessage"] == "30004 happened"
    assert codes["30004"]["samples"][0]["errorReason"] is None
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
    assert "    ErrorMessage: 30004 happened" in out
    assert "    ErrorReason: NotAnObject" in out
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

    # Then exit 1, the AWS error code and which queue on one line, no traceback
    assert exit_code == 1
    captured = capsys.readouterr()
    assert "AWS.SimpleQueueService.NonExistentQueue" in captured.err
    assert "the DLQ (--dlq-url)" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err


def test_dlq_redrive_moves_every_body_back_but_leaves_invalid_requests(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five dead letters: three 30004s and two InvalidRequests
    bodies = _fill(stack)

    # When they are redriven (moto has no StartMessageMoveTask: the CLI copies)
    exit_code = main([*_redrive(stack), "--json"])

    # Then the three 30004s moved, the two InvalidRequests were skipped, and stderr says how to
    # move them too
    assert exit_code == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["method"] == "copy"
    assert (report["moved"], report["failed"], report["skipped"]) == (3, 0, {"InvalidRequest": 2})
    assert "skipped 2 InvalidRequest letter(s)" in captured.err
    assert "--include-invalid" in captured.err
    # And the source queue holds the three bodies without the error attributes; the DLQ the rest
    moved = drain(stack.queue_url)
    assert sorted(m["body"] for m in moved) == sorted(bodies[:3])
    assert all(m["attributes"] == {} for m in moved)
    assert visible_messages(stack.dead_letter_queue_url) == 2
    assert hidden_messages(stack.dead_letter_queue_url) == 0


def test_dlq_redrive_include_invalid_moves_every_body_back(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given five dead letters
    bodies = sorted(_fill(stack))

    # When they are redriven with --include-invalid
    exit_code = main([*_redrive(stack), "--include-invalid", "--json"])

    # Then all five moved (by copy: moto has no StartMessageMoveTask, and the report says so)
    assert exit_code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["method"], report["moved"], report["failed"], report["skipped"]) == ("copy", 5, 0, {})
    assert "StartMessageMoveTask" in report["fellBackBecause"]
    assert visible_messages(stack.dead_letter_queue_url) == 0
    assert hidden_messages(stack.dead_letter_queue_url) == 0
    assert sorted(m["body"] for m in drain(stack.queue_url)) == bodies


@pytest.mark.parametrize(
    ("codes", "moved", "left"),
    [
        (["30004"], 3, 2),
        (["InvalidRequest"], 2, 3),  # named: moved, --include-invalid or not
        (["30004", "InvalidRequest"], 5, 0),
        (["42004"], 0, 5),
        (["30004", "--include-invalid"], 5, 0),  # --include-invalid adds them to the choice
    ],
)
def test_dlq_redrive_moves_only_the_error_codes_named(
    stack: Stack, capsys: pytest.CaptureFixture[str], codes: list[str], moved: int, left: int
) -> None:
    # Given five dead letters under two codes
    _fill(stack)

    # When only some codes are redriven
    options = [
        arg for code in codes for arg in ((code,) if code.startswith("--") else ("--error-code", code))
    ]
    exit_code = main([*_redrive(stack), *options, "--json"])

    # Then only those letters moved; the others stay, visible
    assert exit_code == 0
    assert json.loads(capsys.readouterr().out)["moved"] == moved
    assert len(drain(stack.queue_url)) == moved
    assert visible_messages(stack.dead_letter_queue_url) == left


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

    # Then it reports what would move and what it would skip, and nothing moved
    assert exit_code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dryRun"] is True
    assert report["wouldMove"] == 3
    assert report["skipped"] == {"InvalidRequest": 2}
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
    put_dead_letter(stack, "x" * 300_000, "42004")
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

    # Then the command fails naming which queue is missing and the error code; the DLQ is untouched
    assert exit_code == 1
    err = capsys.readouterr().err
    assert f"the source queue (--queue-url) {stack.queue_url}-gone does not exist" in err
    assert "AWS.SimpleQueueService.NonExistentQueue" in err
    assert len(err.strip().splitlines()) == 1
    assert visible_messages(stack.dead_letter_queue_url) == 5


def _redrive(stack: Stack) -> list[str]:
    return ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", stack.queue_url]


# What a hostile producer can put in a message: SQS takes C1 controls (U+0080..U+009F) and
# bidi overrides; moto, unlike SQS, also takes C0 controls such as ESC and BEL.
HOSTILE_BODY = '{"streamIds": ["a"]}\x1b[2J\x1b]0;owned\x07\x9b31m\r\u202egnp.exe'
HOSTILE_MESSAGE = "refused\x1b[1A\x9b2K by \u2067ZEGO"
HOSTILE_REASON = "Bad\x85Reason"


def test_dlq_list_escapes_what_would_steer_the_terminal(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a dead letter whose body and attributes hold escape sequences and bidi controls
    client("sqs").send_message(
        QueueUrl=stack.dead_letter_queue_url,
        MessageBody=HOSTILE_BODY,
        MessageAttributes={
            "ErrorCode": {"DataType": "String", "StringValue": "30004\x1b[8m"},
            "ErrorMessage": {"DataType": "String", "StringValue": HOSTILE_MESSAGE},
            "ErrorReason": {"DataType": "String", "StringValue": HOSTILE_REASON},
        },
    )

    # When it is listed for a person
    assert main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url]) == 0
    out = capsys.readouterr().out

    # Then no control or format character reaches the terminal: each is shown escaped
    assert all(char.isprintable() or char == "\n" for char in out)
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m\\r\\u202egnp.exe" in out
    assert "ErrorMessage: refused\\x1b[1A\\x9b2K by \\u2067ZEGO" in out
    assert "ErrorReason: Bad\\x85Reason" in out
    assert any(line.split() == ["30004\\x1b[8m", "1"] for line in out.splitlines())

    # When it is listed as JSON
    assert main(["dlq", "list", "--dlq-url", stack.dead_letter_queue_url, "--json"]) == 0
    text = capsys.readouterr().out

    # Then the JSON holds the exact values, written with JSON escapes only
    assert all(char.isprintable() or char == "\n" for char in text)
    (group,) = json.loads(text)["errorCodes"]
    assert group["samples"][0] == {
        "body": HOSTILE_BODY,
        "errorMessage": HOSTILE_MESSAGE,
        "errorReason": HOSTILE_REASON,
    }


def test_dlq_redrive_refuses_a_queue_that_is_not_the_dlqs_source(
    stack: Stack, aws: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given dead letters, and another stack's resume queue (its RedrivePolicy names its own DLQ)
    _fill(stack)
    other = create_stack(app_id=1, server_secret="y" * 32, environment=aws)

    # When the DLQ is redriven to the other queue
    exit_code = main(
        ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url, "--queue-url", other.queue_url]
    )

    # Then it is refused (exit 2, one line naming both), and nothing moved
    assert exit_code == 2
    err = capsys.readouterr().err
    assert f"sends its dead letters to {other.dead_letter_queue_arn}" in err
    assert "not the source queue" in err
    assert len(err.strip().splitlines()) == 1
    assert visible_messages(stack.dead_letter_queue_url) == 5
    assert drain(other.queue_url) == []


def test_dlq_redrive_names_a_missing_dlq(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    # When the DLQ URL names no queue
    exit_code = main(
        ["dlq", "redrive", "--dlq-url", stack.dead_letter_queue_url + "-gone", "--queue-url", stack.queue_url]
    )

    # Then the error says it is the DLQ that is missing
    assert exit_code == 1
    assert f"the DLQ (--dlq-url) {stack.dead_letter_queue_url}-gone does not exist" in capsys.readouterr().err
