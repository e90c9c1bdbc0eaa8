"""The dead-letter queue seen by an operator: what is in it, and sending it back for a replay.

Every function takes a boto3 SQS client (or a fake with the same methods) and raises botocore's
errors unchanged; the CLI turns them into one line.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from resumectl.aws import describe, error_code, unsupported_action
from resumectl.journal import Journal

SQS_BATCH_ENTRIES = 10  # Receive/Send/Delete/ChangeMessageVisibility batch limit
SQS_BATCH_BYTES = 256 * 1024  # the classic SendMessageBatch payload limit; a bigger body goes alone
# An empty *short-poll* receive only says that the servers it sampled were empty; a long poll
# asks all of them, so one empty answer means "nothing visible is left".
EMPTY_QUEUE_WAIT_SECONDS = 1
DEFAULT_PEEK_LIMIT = 10_000
NO_ERROR_CODE = "(none)"  # a message without ErrorCode: e.g. moved by SQS's own redrive policy
ERROR_CODE = "ErrorCode"
ERROR_REASON = "ErrorReason"
ERROR_MESSAGE = "ErrorMessage"
# A letter whose body the function refused as a request: replaying it fails the same way.
INVALID_REQUEST = "InvalidRequest"
NON_EXISTENT_QUEUE_CODES = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})

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

    @property
    def error_reason(self) -> str | None:
        return self.attributes.get(ERROR_REASON) or None

    @property
    def error_message(self) -> str | None:
        return self.attributes.get(ERROR_MESSAGE) or None


@dataclass(frozen=True)
class Sample:
    body: str  # cut to SAMPLE_CHARS
    error_reason: str | None
    error_message: str | None


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
    samples: list[Sample]


SAMPLE_CHARS = 200


class QueueMissing(Exception):
    """A queue the command names does not exist; `role` says which one (the DLQ, the source queue)."""

    def __init__(self, role: str, queue_url: str, error: ClientError) -> None:
        super().__init__(f"{role} {queue_url} does not exist ({describe(error)})")
        self.role = role
        self.queue_url = queue_url


def queue_attributes(sqs: Any, queue_url: str, names: list[str], *, role: str) -> dict[str, str]:
    """Some attributes of a queue. Raises QueueMissing naming `role` (e.g. "the DLQ (--dlq-url)")
    when there is no such queue, ClientError for any other refusal."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    except ClientError as error:
        if error_code(error) in NON_EXISTENT_QUEUE_CODES:
            raise QueueMissing(role, queue_url, error) from error
        raise
    return {str(name): str(value) for name, value in attributes.items()}


def queue_arn(sqs: Any, queue_url: str, *, role: str = "the queue") -> str:
    """The queue's ARN; raises QueueMissing when there is no such queue."""
    return queue_attributes(sqs, queue_url, ["QueueArn"], role=role)["QueueArn"]


class NotTheSourceQueue(Exception):
    """A redrive target whose RedrivePolicy does not send its dead letters to this DLQ."""


def check_source_queue(sqs: Any, *, queue_url: str, dead_letter_queue_arn: str, role: str) -> str:
    """The source queue's ARN, once its RedrivePolicy is seen to name the DLQ as its
    deadLetterTargetArn. Raises NotTheSourceQueue otherwise, QueueMissing when it does not exist."""
    attributes = queue_attributes(sqs, queue_url, ["QueueArn", "RedrivePolicy"], role=role)
    policy_text = attributes.get("RedrivePolicy")
    if not policy_text:
        raise NotTheSourceQueue(
            f"{role} {queue_url} has no RedrivePolicy: it is not the source queue of this DLQ"
        )
    try:
        target = json.loads(policy_text).get("deadLetterTargetArn")
    except (ValueError, AttributeError):
        target = None
    if target != dead_letter_queue_arn:
        raise NotTheSourceQueue(
            f"{role} {queue_url} sends its dead letters to {target or 'nowhere readable'}, not to this "
            f"DLQ ({dead_letter_queue_arn}): it is not the source queue of these letters"
        )
    return attributes["QueueArn"]


def approximate_messages(sqs: Any, queue_url: str, *, role: str = "the queue") -> int:
    """ApproximateNumberOfMessages: visible messages, as SQS estimates them."""
    attributes = queue_attributes(sqs, queue_url, ["ApproximateNumberOfMessages"], role=role)
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
            samples=[Sample(_cut(m.body), m.error_reason, m.error_message) for m in members[:samples]],
        )
        for code, members in groups.items()
    ]
    return sorted(counts, key=lambda group: (-group.count, group.error_code))


@dataclass
class Redrive:
    method: str  # "move-task" (SQS moves them) or "copy" (this tool sent and deleted them)
    moved: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # error code -> messages not moved
    sent_not_deleted: int = 0  # sent back but still in the DLQ (the journal keeps them from a resend)
    skipped: Counter[str] = field(default_factory=Counter)  # ErrorCode -> letters left in the DLQ
    already_sent: int = 0  # letters an earlier redrive sent, deleted now without a resend
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
    journal: Journal,
    budget: int | None = None,
    select: Callable[[SeenMessage], bool] = lambda message: True,
    fell_back_because: str | None = None,
) -> Redrive:
    """Receive DLQ messages, send the bodies of those `select` takes to `queue_url`, delete each
    one whose send succeeded.

    Only the body goes back: it is a replayable resume request (docs/contract.md), and the error
    attributes describe the failure that is being retried, not the new attempt. A message whose
    send fails stays in the DLQ and is made visible again, and so does one `select` leaves
    (counted in `skipped` by ErrorCode). At most `budget` letters are handled (moved, failed,
    skipped or deleted as already sent): the caller passes what the DLQ held at the start, so that
    letters which come back while it runs (the function dead-letters some again at once) wait for
    the next redrive instead of making this one endless. Each send is written to the `journal`
    before the delete; a letter the journal names was sent by an earlier redrive whose delete
    failed, and is only deleted. A call that fails for a reason other than a message's content (access denied,
    throttled, ...) ends the redrive and is reported as a failure. Never raises for a send;
    raises ClientError from a receive, JournalError when the journal cannot be written.
    """
    copier = _Copier(
        sqs,
        dead_letter_queue_url,
        queue_url,
        Redrive(method="copy", fell_back_because=fell_back_because),
        journal,
    )
    redrive = copier.redrive
    seen: set[str] = set()
    try:
        while (limit is None or copier.done() < limit) and (budget is None or copier.handled() < budget):
            room = SQS_BATCH_ENTRIES
            if limit is not None:
                room = min(room, limit - copier.done())
            if budget is not None:
                room = min(room, budget - copier.handled())
            batch = _receive(sqs, dead_letter_queue_url, hide_seconds, room)
            fresh = [m for m in batch if m.message_id not in seen]
            copier.hidden.extend(m.receipt_handle for m in batch if m.message_id in seen)
            if not fresh:  # empty, or only the messages that failed before, shown again
                break
            seen.update(m.message_id for m in fresh)
            already_sent = [m for m in fresh if m.message_id in journal]
            fresh = [m for m in fresh if m.message_id not in journal]
            copier.delete_already_sent(already_sent)
            for message in fresh:
                if not select(message):
                    redrive.skipped[message.error_code] += 1
                    copier.hidden.append(message.receipt_handle)
            if not copier.send_all([m for m in fresh if select(m)]):
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
    def __init__(
        self, sqs: Any, dead_letter_queue_url: str, queue_url: str, redrive: Redrive, journal: Journal
    ) -> None:
        self.sqs = sqs
        self.dead_letter_queue_url = dead_letter_queue_url
        self.queue_url = queue_url
        self.redrive = redrive
        self.journal = journal
        self.hidden: list[str] = []  # receipt handles of messages received and not moved

    def done(self) -> int:
        """Letters that count towards --max: moved, failed, or deleted as already sent."""
        return self.redrive.moved + self.redrive.failures.total() + self.redrive.already_sent

    def handled(self) -> int:
        """Letters dealt with in any way, skipped ones included."""
        return self.done() + self.redrive.skipped.total()

    def delete_already_sent(self, messages: list[SeenMessage]) -> None:
        if not messages:
            return
        not_deleted = self._delete(messages)
        self.redrive.already_sent += len(messages) - not_deleted
        self.redrive.sent_not_deleted += not_deleted

    def _delete(self, messages: list[SeenMessage]) -> int:
        """Delete from the DLQ, forget what was deleted; how many could not be deleted."""
        failed = _delete(self.sqs, self.dead_letter_queue_url, messages)
        failed_ids = {messages[index].message_id for index in failed}
        self.journal.forget(m.message_id for m in messages if m.message_id not in failed_ids)
        return len(failed)

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
        self.journal.record_sent(m.message_id for m in sent)  # before the delete that may fail
        self.redrive.sent_not_deleted += self._delete(sent)
        return True

    def send_all_alone(self, group: list[SeenMessage]) -> bool:
        for index, message in enumerate(group):
            if not self._send([message]):
                self.hidden.extend(m.receipt_handle for m in group[index + 1 :])
                return False
        return True


def _delete(sqs: Any, queue_url: str, messages: list[SeenMessage]) -> list[int]:
    """Delete what was sent; returns the indexes of those that could not be deleted. Never raises."""
    failed: list[int] = []
    for start in range(0, len(messages), SQS_BATCH_ENTRIES):
        chunk = messages[start : start + SQS_BATCH_ENTRIES]
        try:
            response = sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(start + index), "ReceiptHandle": m.receipt_handle}
                    for index, m in enumerate(chunk)
                ],
            )
        except ClientError:
            failed.extend(range(start, start + len(chunk)))
            continue
        failed.extend(int(entry["Id"]) for entry in response.get("Failed", []))
    return failed


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
