"""The dead-letter queue seen by an operator: what is in it, and sending it back for a replay.

Every function takes a boto3 SQS client (or a fake with the same methods) and raises botocore's
errors unchanged; the CLI turns them into one line.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from resumectl.aws import describe, error_code, unsupported_action

SQS_BATCH_ENTRIES = 10  # Receive/Send/Delete/ChangeMessageVisibility batch limit
SQS_BATCH_BYTES = 256 * 1024  # the classic SendMessageBatch payload limit; a bigger body goes alone
# An empty *short-poll* receive only says that the servers it sampled were empty; a long poll
# asks all of them, so one empty answer means "nothing visible is left".
EMPTY_QUEUE_WAIT_SECONDS = 1
DEFAULT_PEEK_LIMIT = 10_000
NO_ERROR_CODE = "(none)"  # a message without ErrorCode: e.g. moved by SQS's own redrive policy
ERROR_CODE = "ErrorCode"
ERROR_REASON = "ErrorReason"

MOVE_TASK_POLL_SECONDS = 2.0


@dataclass(frozen=True)
class SeenMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]  # the String message attributes

    @property
    def error_code(self) -> str:
        return self.attributes.get(ERROR_CODE) or NO_ERROR_CODE


@dataclass
class Peek:
    """Messages received (hidden) and not yet made visible again."""

    messages: list[SeenMessage] = field(default_factory=list)
    exhausted: bool = False  # True: every visible message was seen; False: stopped at the limit
    unrestored: int = 0  # messages that stay hidden until their visibility timeout ends


@dataclass(frozen=True)
class ErrorCodeCount:
    error_code: str
    count: int
    reasons: dict[str, int]  # ErrorReason -> count, for the messages that carry one
    samples: list[str]  # bodies, cut to SAMPLE_CHARS


SAMPLE_CHARS = 200


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The queue's ARN; a missing queue raises ClientError (AWS.SimpleQueueService.NonExistentQueue)."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attributes["QueueArn"])


def approximate_messages(sqs: Any, queue_url: str) -> int:
    """ApproximateNumberOfMessages: visible messages, as SQS estimates them."""
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    return int(attributes.get("ApproximateNumberOfMessages", 0))


@contextmanager
def peek(sqs: Any, queue_url: str, *, hide_seconds: int, limit: int = DEFAULT_PEEK_LIMIT) -> Iterator[Peek]:
    """Receive up to `limit` messages without consuming them, and make them visible again on exit.

    Each message is hidden for up to `hide_seconds` (it has to be: a receive that does not hide
    would show the same messages again and again, and counting would be guesswork). Messages are
    deduplicated by MessageId; receiving stops when the queue answers empty, when it only answers
    messages already seen (their hide time ran out), or at `limit`.
    Raises ClientError from the receive; the messages seen so far are made visible all the same.
    """
    result = Peek()
    seen: dict[str, SeenMessage] = {}
    try:
        while len(seen) < limit:
            batch = _receive(sqs, queue_url, hide_seconds, min(SQS_BATCH_ENTRIES, limit - len(seen)))
            if not batch:
                result.exhausted = True
                break
            fresh = 0
            for message in batch:
                fresh += message.message_id not in seen
                seen[message.message_id] = message  # the newest receipt handle is the one that works
            if not fresh:
                result.exhausted = True
                break
        result.messages = list(seen.values())
        yield result
    finally:
        result.unrestored = make_visible(
            sqs, queue_url, [message.receipt_handle for message in seen.values()]
        )


def make_visible(sqs: Any, queue_url: str, receipt_handles: list[str]) -> int:
    """End the hiding of received messages now. Never raises: returns how many stay hidden (until
    their visibility timeout ends, when SQS shows them again by itself)."""
    still_hidden = 0
    for start in range(0, len(receipt_handles), SQS_BATCH_ENTRIES):
        chunk = receipt_handles[start : start + SQS_BATCH_ENTRIES]
        try:
            response = sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, handle in enumerate(chunk)
                ],
            )
        except ClientError:
            still_hidden += len(chunk)
            continue
        still_hidden += len(response.get("Failed", []))
    return still_hidden


def count_by_error_code(messages: list[SeenMessage], *, samples: int) -> list[ErrorCodeCount]:
    """Messages grouped by ErrorCode (then by ErrorReason), the biggest group first."""
    groups: dict[str, list[SeenMessage]] = {}
    for message in messages:
        groups.setdefault(message.error_code, []).append(message)
    counts = [
        ErrorCodeCount(
            error_code=code,
            count=len(members),
            reasons=dict(
                Counter(m.attributes[ERROR_REASON] for m in members if m.attributes.get(ERROR_REASON))
            ),
            samples=[_cut(m.body) for m in members[:samples]],
        )
        for code, members in groups.items()
    ]
    return sorted(counts, key=lambda group: (-group.count, group.error_code))


@dataclass
class Redrive:
    method: str  # "move-task" (SQS moves them) or "copy" (this tool sent and deleted them)
    moved: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # error code -> messages not moved
    sent_not_deleted: int = 0  # sent back but still in the DLQ: a replay would send them twice
    unrestored: int = 0
    task_handle: str | None = None
    task_status: str | None = None  # a move task's last status (RUNNING when we stopped waiting)
    fell_back_because: str | None = None  # why the messages were copied rather than moved by SQS


class MoveTaskUnsupported(Exception):
    """This SQS cannot run StartMessageMoveTask: copy the messages instead."""


def move_task_unsupported(error: ClientError) -> bool:
    """Whether an error to StartMessageMoveTask means "this SQS cannot do that" (so copy instead)."""
    return unsupported_action(error)


def start_move_task(sqs: Any, *, source_arn: str, destination_arn: str) -> str:
    """Ask SQS to move every DLQ message to the destination; returns the task's handle.

    Raises MoveTaskUnsupported when this SQS cannot (copy instead), ClientError for any other
    refusal (nothing has moved then: rerunning is safe).
    """
    try:
        response = sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)
    except ClientError as error:
        if move_task_unsupported(error):
            raise MoveTaskUnsupported(describe(error, with_operation=False)) from error
        raise
    return str(response["TaskHandle"])


def follow_move_task(
    sqs: Any,
    *,
    source_arn: str,
    task_handle: str,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Redrive:
    """Wait up to `wait_seconds` for a move task to end; its last known state.

    A task still RUNNING at the deadline goes on without us. Raises ClientError from
    ListMessageMoveTasks (the task itself is unaffected).
    """
    redrive = Redrive(method="move-task", task_handle=task_handle, task_status="RUNNING")
    deadline = clock() + wait_seconds
    while True:
        task = _move_task(sqs, source_arn, task_handle)
        if task is not None:
            redrive.task_status = str(task.get("Status", "RUNNING"))
            redrive.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            if redrive.task_status == "FAILED":
                redrive.failures[str(task.get("FailureReason") or "MoveTaskFailed")] += max(
                    int(task.get("ApproximateNumberOfMessagesToMove", 0)) - redrive.moved, 1
                )
            if redrive.task_status != "RUNNING":
                return redrive
        if clock() >= deadline:
            return redrive
        sleep(MOVE_TASK_POLL_SECONDS)


def copy_back(
    sqs: Any,
    *,
    dead_letter_queue_url: str,
    queue_url: str,
    hide_seconds: int,
    limit: int | None,
    fell_back_because: str | None = None,
) -> Redrive:
    """Receive DLQ messages, send their bodies to `queue_url`, delete each one whose send succeeded.

    Only the body goes back: it is a replayable resume request (docs/contract.md), and the error
    attributes describe the failure that is being retried, not the new attempt. A message whose
    send fails stays in the DLQ and is made visible again. A call that fails for a reason other
    than a message's content (access denied, throttled, ...) ends the redrive and is reported as
    a failure. Never raises for a send; raises ClientError from a receive.
    """
    copier = _Copier(
        sqs, dead_letter_queue_url, queue_url, Redrive(method="copy", fell_back_because=fell_back_because)
    )
    redrive = copier.redrive
    seen: set[str] = set()
    try:
        while limit is None or redrive.moved + redrive.failures.total() < limit:
            room = SQS_BATCH_ENTRIES
            if limit is not None:
                room = min(room, limit - redrive.moved - redrive.failures.total())
            batch = _receive(sqs, dead_letter_queue_url, hide_seconds, room)
            fresh = [m for m in batch if m.message_id not in seen]
            copier.hidden.extend(m.receipt_handle for m in batch if m.message_id in seen)
            if not fresh:  # empty, or only the messages that failed before, shown again
                break
            seen.update(m.message_id for m in fresh)
            if not copier.send_all(fresh):
                break
    finally:
        redrive.unrestored = make_visible(sqs, dead_letter_queue_url, copier.hidden)
    return redrive


# SendMessageBatch refuses the whole call for one message too big or with characters SQS does not
# take; the other messages of that batch are fine, and are sent one at a time to find it.
MESSAGE_REFUSED_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidMessageContents",
        "BatchRequestTooLong",
        "AWS.SimpleQueueService.BatchRequestTooLong",
    }
)


class _Copier:
    def __init__(self, sqs: Any, dead_letter_queue_url: str, queue_url: str, redrive: Redrive) -> None:
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.queue_url = queue_url
        self.redrive = redrive
        self.hidden: list[str] = []  # receipt handles of messages received and not moved

    def send_all(self, messages: list[SeenMessage]) -> bool:
        """Send and delete; False when a call failed for good (stop redriving)."""
        groups = list(_by_size(messages))
        for index, group in enumerate(groups):
            if not self._send(group):
                self.hidden.extend(m.receipt_handle for later in groups[index + 1 :] for m in later)
                return False
        return True

    def _send(self, group: list[SeenMessage]) -> bool:
        try:
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "MessageBody": m.body} for index, m in enumerate(group)],
            )
        except ClientError as error:
            code = error_code(error)
            if code in MESSAGE_REFUSED_CODES and len(group) > 1:
                return self.send_all_alone(group)
            self.redrive.failures[code] += len(group)
            self.hidden.extend(m.receipt_handle for m in group)
            return code in MESSAGE_REFUSED_CODES
        sent = [group[int(entry["Id"])] for entry in response.get("Successful", [])]
        for entry in response.get("Failed", []):
            self.redrive.failures[str(entry.get("Code") or "SendFailed")] += 1
            self.hidden.append(group[int(entry["Id"])].receipt_handle)
        self.redrive.moved += len(sent)
        self.redrive.sent_not_deleted += _delete(self.sqs, self.dead_letter_queue_url, sent)
        return True

    def send_all_alone(self, group: list[SeenMessage]) -> bool:
        for index, message in enumerate(group):
            if not self._send([message]):
                self.hidden.extend(m.receipt_handle for m in group[index + 1 :])
                return False
        return True


def _delete(sqs: Any, queue_url: str, messages: list[SeenMessage]) -> int:
    """Delete what was sent; returns how many could not be deleted. Never raises."""
    if not messages:
        return 0
    try:
        response = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": m.receipt_handle} for index, m in enumerate(messages)
            ],
        )
    except ClientError:
        return len(messages)
    return len(response.get("Failed", []))


def _by_size(messages: list[SeenMessage]) -> Iterator[list[SeenMessage]]:
    group: list[SeenMessage] = []
    size = 0
    for message in messages:
        body_size = len(message.body.encode())
        if group and size + body_size > SQS_BATCH_BYTES:
            yield group
            group, size = [], 0
        group.append(message)
        size += body_size
    if group:
        yield group


def _receive(sqs: Any, queue_url: str, hide_seconds: int, count: int) -> list[SeenMessage]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=count,
        VisibilityTimeout=hide_seconds,
        WaitTimeSeconds=EMPTY_QUEUE_WAIT_SECONDS,
        MessageAttributeNames=["All"],
    )
    return [
        SeenMessage(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            body=str(message.get("Body", "")),
            attributes={
                name: str(value["StringValue"])
                for name, value in message.get("MessageAttributes", {}).items()
                if "StringValue" in value
            },
        )
        for message in response.get("Messages", [])
    ]


def _move_task(sqs: Any, source_arn: str, handle: str | None) -> dict[str, Any] | None:
    tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results", [])
    for task in tasks:
        if task.get("TaskHandle") == handle:
            return dict(task)
    # ListMessageMoveTasks shows the handle of a RUNNING task only. Only one task per queue can
    # run, and ours is the newest, so a finished newest entry is ours.
    if tasks and tasks[0].get("Status") != "RUNNING":
        return dict(tasks[0])
    return None


def _cut(body: str) -> str:
    return body if len(body) <= SAMPLE_CHARS else body[:SAMPLE_CHARS] + "…"
