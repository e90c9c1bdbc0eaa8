"""The redrive paths moto cannot show — an SQS that runs StartMessageMoveTask, calls refused
halfway — against an in-memory SQS. No network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from resumectl import cli
from resumectl.dead_letter_queue import (
    MoveTaskUnsupported,
    copy_back,
    follow_move_task,
    move_task_unsupported,
    start_move_task,
)
from resumectl.journal import Journal

from .fake_sqs import FakeSqs, client_error


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal", DLQ)


def _use(monkeypatch: pytest.MonkeyPatch, sqs: FakeSqs) -> None:
    class FakeClients:
        def get(self, service: str, *, attempts: int = 3) -> FakeSqs:
            return sqs

    monkeypatch.setattr(cli, "Clients", FakeClients)


DLQ = "https://sqs.example/1/dlq"
QUEUE = "https://sqs.example/1/queue"


@pytest.mark.parametrize(
    ("code", "status", "unsupported"),
    [
        ("500", 500, True),  # moto 5.2.5: NotImplementedError, answered as a bare HTML 500 page
        ("UnsupportedOperation", 400, True),
        ("AWS.SimpleQueueService.UnsupportedOperation", 400, True),
        ("InvalidAction", 400, True),
        ("UnknownOperationException", 400, True),
        ("NotFound", 404, True),
        ("NotImplemented", 501, True),
        ("InternalError", 500, False),  # a real SQS failing: report it, do not copy behind its back
        ("AccessDenied", 403, False),
        ("RequestThrottled", 400, False),
        ("ResourceNotFoundException", 400, False),
    ],
)
def test_only_an_unknown_action_counts_as_unsupported(code: str, status: int, unsupported: bool) -> None:
    # Given what a service answered to StartMessageMoveTask
    error = client_error(code, status, operation="StartMessageMoveTask")

    # Then only "this SQS cannot do that" sends the redrive down the copy path
    assert move_task_unsupported(error) is unsupported


def test_a_move_task_is_followed_until_it_completes() -> None:
    # Given an SQS that runs move tasks: running, then completed with 7 moved
    sqs = FakeSqs(DLQ, QUEUE)
    sqs.move_tasks = [
        {"TaskHandle": "task-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 3},
        {"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 7},
    ]
    naps: list[float] = []

    # When the move task is started and followed
    handle = start_move_task(sqs, source_arn=f"arn:{DLQ}", destination_arn=f"arn:{QUEUE}")
    redrive = follow_move_task(
        sqs, source_arn=f"arn:{DLQ}", task_handle=handle, wait_seconds=60, sleep=naps.append
    )

    # Then its outcome is SQS's count, and nothing was copied by hand
    assert (redrive.method, redrive.task_status, redrive.moved) == ("move-task", "COMPLETED", 7)
    assert len(naps) == 1
    assert "SendMessageBatch" not in sqs.calls


def test_a_failed_move_task_is_a_failure() -> None:
    # Given a move task that fails after 2 of 5
    sqs = FakeSqs(DLQ, QUEUE)
    sqs.move_tasks = [
        {
            "Status": "FAILED",
            "ApproximateNumberOfMessagesMoved": 2,
            "ApproximateNumberOfMessagesToMove": 5,
            "FailureReason": "AWS.SimpleQueueService.NonExistentQueue",
        }
    ]

    # When it is followed
    redrive = follow_move_task(
        sqs, source_arn="s", task_handle="task-1", wait_seconds=5, sleep=lambda _: None
    )

    # Then the three not moved are failures under SQS's reason
    assert redrive.failures == {"AWS.SimpleQueueService.NonExistentQueue": 3}


def test_a_move_task_still_running_at_the_deadline_is_reported_running() -> None:
    # Given a task that keeps running, and a clock past the deadline at once
    sqs = FakeSqs(DLQ, QUEUE)
    sqs.move_tasks = [{"TaskHandle": "task-1", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 4}]
    ticks = iter([0.0, 100.0])

    # When it is followed
    redrive = follow_move_task(
        sqs,
        source_arn="s",
        task_handle="task-1",
        wait_seconds=10,
        sleep=lambda _: None,
        clock=lambda: next(ticks),
    )

    # Then it says RUNNING with the count so far: it goes on without us
    assert (redrive.task_status, redrive.moved) == ("RUNNING", 4)


def test_any_other_refusal_of_a_move_task_is_raised() -> None:
    # Given an SQS that refuses the task for lack of permission
    sqs = FakeSqs(DLQ, QUEUE)
    sqs.move_task_error = client_error("AccessDenied", 403)

    # Then the error reaches the caller: copying instead would hide the real problem
    with pytest.raises(ClientError):
        start_move_task(sqs, source_arn="s", destination_arn="d")


def test_an_sqs_without_move_tasks_says_so() -> None:
    # Given an SQS that does not know the action (moto's answer)
    sqs = FakeSqs(DLQ, QUEUE)
    sqs.move_task_error = client_error("500", 500, message="<!doctype html><title>500</title>")

    # Then starting one raises MoveTaskUnsupported, naming what the service said
    with pytest.raises(MoveTaskUnsupported, match="500: HTTP 500 with an HTML page"):
        start_move_task(sqs, source_arn="s", destination_arn="d")


def test_a_batch_refused_for_one_message_is_sent_one_by_one(journal: Journal) -> None:
    # Given three dead letters, one of which SQS refuses, refusing any batch that holds it
    sqs = FakeSqs(DLQ, QUEUE)
    for body in ("good-1", "BAD", "good-2"):
        sqs.put(DLQ, body)

    def refuse(entries: list[dict[str, Any]]) -> ClientError | None:
        if any(entry["MessageBody"] == "BAD" for entry in entries):
            return client_error("InvalidParameterValue")
        return None

    sqs.refuse_send = refuse

    # When the DLQ is copied back
    redrive = copy_back(
        sqs, dead_letter_queue_url=DLQ, queue_url=QUEUE, hide_seconds=30, limit=None, journal=journal
    )

    # Then the two good ones moved, the bad one stays in the DLQ, visible again
    assert redrive.moved == 2
    assert redrive.failures == {"InvalidParameterValue": 1}
    assert sorted(sqs.visible(QUEUE)) == ["good-1", "good-2"]
    assert sqs.visible(DLQ) == ["BAD"]


def test_a_send_refused_for_good_stops_the_copy_and_leaves_every_message_visible(journal: Journal) -> None:
    # Given 25 dead letters, and a queue that denies every send
    sqs = FakeSqs(DLQ, QUEUE)
    for index in range(25):
        sqs.put(DLQ, f"body-{index}")
    sqs.refuse_send = lambda entries: client_error("AccessDenied", 403)

    # When the DLQ is copied back
    redrive = copy_back(
        sqs, dead_letter_queue_url=DLQ, queue_url=QUEUE, hide_seconds=30, limit=None, journal=journal
    )

    # Then it stopped after the first refused call, and every message is in the DLQ, visible
    assert redrive.moved == 0
    assert redrive.failures == {"AccessDenied": 10}
    assert sqs.calls.count("SendMessageBatch") == 1
    assert len(sqs.visible(DLQ)) == 25
    assert redrive.unrestored == 0


def test_cli_reports_a_completed_move_task(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SQS that supports move tasks
    sqs = FakeSqs(DLQ, QUEUE, dead_letter_targets={QUEUE: DLQ})
    sqs.move_tasks = [{"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 12}]
    _use(monkeypatch, sqs)

    # When the operator redrives every letter (nothing to filter: a move task may move them all)
    exit_code = cli.main(
        ["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE, "--include-invalid", "--json"]
    )

    # Then SQS moved them, and the CLI reports its count
    assert exit_code == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["method"], report["taskStatus"], report["moved"]) == ("move-task", "COMPLETED", 12)
    assert report["fellBackBecause"] is None


def test_a_filtered_redrive_copies_even_where_a_move_task_works(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an SQS with move tasks, and an InvalidRequest letter among the dead letters
    sqs = FakeSqs(DLQ, QUEUE, dead_letter_targets={QUEUE: DLQ})
    sqs.move_tasks = [{"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": 2}]
    sqs.put(DLQ, "good")
    _use(monkeypatch, sqs)

    # When the operator redrives with the default filter (InvalidRequest left)
    exit_code = cli.main(["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE, "--json"])

    # Then no move task was started (it would move every letter): the letters were copied
    assert exit_code == 0
    assert "StartMessageMoveTask" not in sqs.calls
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "copy"
    assert "InvalidRequest" in report["fellBackBecause"]


def test_a_redrive_whose_delete_failed_exits_1_and_the_next_one_does_not_send_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], redrive_journal: Path
) -> None:
    # Given three dead letters, and a DLQ that refuses every delete
    sqs = FakeSqs(DLQ, QUEUE, dead_letter_targets={QUEUE: DLQ})
    for index in range(3):
        sqs.put(DLQ, f"body-{index}")
    sqs.refuse_delete = True
    _use(monkeypatch, sqs)
    argv = ["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE, "--force-copy"]

    # When they are redriven
    first = cli.main(argv)

    # Then the bodies were sent, the letters are still in the DLQ, and the exit is 1, saying the
    # journal keeps the next redrive from sending them again
    assert first == 1
    err = capsys.readouterr().err
    assert "3 message(s) were sent back but could not be deleted" in err
    assert str(redrive_journal) in err
    assert sorted(sqs.visible(QUEUE)) == ["body-0", "body-1", "body-2"]
    assert len(sqs.queues[DLQ]) == 3

    # When the deletes work again, the letters show again, and the operator redrives once more
    sqs.refuse_delete = False
    sqs.hidden.clear()  # their visibility timeout ran out
    second = cli.main([*argv, "--json"])

    # Then nothing was sent twice: the letters were only deleted
    assert second == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["moved"], report["alreadySent"], report["sentNotDeleted"]) == (0, 3, 0)
    assert sorted(sqs.visible(QUEUE)) == ["body-0", "body-1", "body-2"]
    assert sqs.queues[DLQ] == {}
    # And the journal forgot them
    assert len(Journal(redrive_journal, DLQ)) == 0


def test_an_unwritable_journal_stops_the_redrive_before_anything_moves(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a journal path that is a file, not a directory
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    sqs = FakeSqs(DLQ, QUEUE, dead_letter_targets={QUEUE: DLQ})
    sqs.put(DLQ, "body")
    _use(monkeypatch, sqs)

    # When a redrive would copy
    exit_code = cli.main(
        ["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE, "--journal", str(blocker)]
    )

    # Then exit 1 naming the journal, and nothing was sent
    assert exit_code == 1
    assert f"the redrive journal {blocker}" in capsys.readouterr().err
    assert "SendMessageBatch" not in sqs.calls
    assert sqs.visible(DLQ) == ["body"]


@pytest.mark.parametrize("targets", [{}, {QUEUE: "https://sqs.example/1/other-dlq"}])
def test_a_redrive_refuses_a_queue_that_is_not_the_dlqs_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], targets: dict[str, str]
) -> None:
    # Given a queue without a RedrivePolicy, or one whose dead letters go to another DLQ
    sqs = FakeSqs(DLQ, QUEUE, dead_letter_targets=targets)
    sqs.put(DLQ, "body")
    _use(monkeypatch, sqs)

    # When the DLQ is redriven to it
    exit_code = cli.main(["dlq", "redrive", "--dlq-url", DLQ, "--queue-url", QUEUE])

    # Then nothing moves: exit 2, one line saying it is not the source queue
    assert exit_code == 2
    err = capsys.readouterr().err
    assert "not the source queue" in err
    assert len(err.strip().splitlines()) == 1
    assert sqs.visible(DLQ) == ["body"]
    assert sqs.visible(QUEUE) == []
    assert "ReceiveMessage" not in sqs.calls


def test_a_redrive_ends_even_when_letters_come_back_at_once(journal: Journal) -> None:
    # Given three dead letters, and a function that dead-letters each replay again at once
    sqs = FakeSqs(DLQ, QUEUE)
    for index in range(3):
        sqs.put(DLQ, f"body-{index}")
    sends: list[int] = []

    def dead_letter_again(entries: list[dict[str, Any]]) -> ClientError | None:
        sends.append(len(entries))
        if sum(sends) > 100:  # the loop this test is about: fail rather than hang
            return client_error("AccessDenied", 403)
        for entry in entries:
            sqs.put(DLQ, entry["MessageBody"])
        return None

    sqs.refuse_send = dead_letter_again

    # When the DLQ is copied back with the budget of what it held at the start
    redrive = copy_back(
        sqs,
        dead_letter_queue_url=DLQ,
        queue_url=QUEUE,
        hide_seconds=30,
        limit=None,
        journal=journal,
        budget=3,
    )

    # Then the three were sent once each, and the copies that came back wait for the next redrive
    assert redrive.moved == 3
    assert redrive.failures == {}
    assert sum(sends) == 3
    assert len(sqs.visible(DLQ)) == 3
