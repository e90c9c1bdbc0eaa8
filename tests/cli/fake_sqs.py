"""An in-memory SQS with the few calls the CLI makes, for the paths moto cannot show: a service
that has StartMessageMoveTask, and calls that fail halfway."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


def client_error(
    code: str, status: int = 400, message: str = "refused", operation: str = "Op"
) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class FakeSqs:
    """Queues by URL; a queue's ARN is `arn:<url>`. Receiving hides a message until it is made
    visible again or deleted (no clock: hide times never run out on their own)."""

    def __init__(self, *urls: str, dead_letter_targets: dict[str, str] | None = None) -> None:
        self.queues: dict[str, dict[str, str]] = {url: {} for url in urls}  # url -> id -> body
        # source queue url -> its DLQ's url (the source's RedrivePolicy)
        self.dead_letter_targets = dead_letter_targets or {}
        self.refuse_delete = False  # DeleteMessageBatch answers every entry Failed
        self.hidden: set[str] = set()
        self.move_tasks: list[dict[str, Any]] = []  # answers of ListMessageMoveTasks, in turn
        self.move_task_error: ClientError | None = None
        self.refuse_send: Callable[[list[dict[str, Any]]], ClientError | None] = lambda entries: None
        self.calls: list[str] = []
        self._ids = itertools.count()

    def put(self, url: str, body: str) -> str:
        message_id = f"m{next(self._ids)}"
        self.queues[url][message_id] = body
        return message_id

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        self.calls.append("GetQueueAttributes")
        visible = [m for m in self._queue(QueueUrl) if m not in self.hidden]
        attributes = {"QueueArn": f"arn:{QueueUrl}", "ApproximateNumberOfMessages": str(len(visible))}
        if QueueUrl in self.dead_letter_targets:
            target = f"arn:{self.dead_letter_targets[QueueUrl]}"
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": target, "maxReceiveCount": 5})
        return {"Attributes": attributes}

    def start_message_move_task(self, SourceArn: str, DestinationArn: str) -> dict[str, Any]:
        self.calls.append("StartMessageMoveTask")
        if self.move_task_error is not None:
            raise self.move_task_error
        return {"TaskHandle": "task-1"}

    def list_message_move_tasks(self, SourceArn: str, MaxResults: int) -> dict[str, Any]:
        self.calls.append("ListMessageMoveTasks")
        return {"Results": [self.move_tasks.pop(0) if len(self.move_tasks) > 1 else self.move_tasks[0]]}

    def receive_message(self, QueueUrl: str, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        self.calls.append("ReceiveMessage")
        visible = [(m, body) for m, body in self._queue(QueueUrl).items() if m not in self.hidden]
        taken = visible[:MaxNumberOfMessages]
        self.hidden.update(m for m, _ in taken)
        return {"Messages": [{"MessageId": m, "ReceiptHandle": f"rh-{m}", "Body": body} for m, body in taken]}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append("SendMessageBatch")
        refusal = self.refuse_send(Entries)
        if refusal is not None:
            raise refusal
        for entry in Entries:
            self.put(QueueUrl, entry["MessageBody"])
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append("DeleteMessageBatch")
        if self.refuse_delete:
            failed = [{"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True} for e in Entries]
            return {"Successful": [], "Failed": failed}
        for entry in Entries:
            message_id = entry["ReceiptHandle"].removeprefix("rh-")
            self._queue(QueueUrl).pop(message_id, None)
            self.hidden.discard(message_id)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append("ChangeMessageVisibilityBatch")
        for entry in Entries:
            self.hidden.discard(entry["ReceiptHandle"].removeprefix("rh-"))
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def visible(self, url: str) -> list[str]:
        return [body for m, body in self._queue(url).items() if m not in self.hidden]

    def _queue(self, url: str) -> dict[str, str]:
        if url not in self.queues:
            raise client_error(
                "AWS.SimpleQueueService.NonExistentQueue", message="The specified queue does not exist."
            )
        return self.queues[url]
