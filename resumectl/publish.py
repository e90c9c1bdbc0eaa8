"""Putting a resume request where the function will find it: its queue, an EventBridge bus, or a
one-time EventBridge Scheduler schedule (for a timed ban's end).

Every function takes a boto3 client and raises botocore's errors unchanged.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

DEFAULT_SCHEDULE_GROUP = "default"
# EventBridge Scheduler's rule for schedule and group names.
SCHEDULER_NAME_PATTERN = re.compile(r"[0-9A-Za-z_.-]{1,64}")


class EventRejected(Exception):
    """PutEvents answered FailedEntryCount > 0: the event was not published. Safe to retry."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def request_json(request: dict[str, Any]) -> str:
    return json.dumps(request, separators=(",", ":"))


def send_to_queue(sqs: Any, *, queue_url: str, request: dict[str, Any]) -> str:
    """Send the request as one message body; returns its MessageId.

    Raises ClientError (e.g. AWS.SimpleQueueService.NonExistentQueue); nothing was sent then.
    """
    response = sqs.send_message(QueueUrl=queue_url, MessageBody=request_json(request))
    return str(response["MessageId"])


def put_event(events: Any, *, event_bus: str, request: dict[str, Any], source: str, detail_type: str) -> str:
    """Publish the request as an event's `detail`; returns the EventId.

    Raises EventRejected when EventBridge refused the entry, ClientError when it refused the call
    (e.g. ResourceNotFoundException for a missing bus). Nothing was published in either case.
    """
    response = events.put_events(
        Entries=[
            {
                "EventBusName": event_bus,
                "Source": source,
                "DetailType": detail_type,
                "Detail": request_json(request),
            }
        ]
    )
    entries = response.get("Entries") or [{}]
    if response.get("FailedEntryCount", 0) or "EventId" not in entries[0]:
        entry = entries[0]
        raise EventRejected(
            str(entry.get("ErrorCode") or "FailedEntry"),
            str(entry.get("ErrorMessage") or "entry not accepted"),
        )
    return str(entries[0]["EventId"])


def at_expression(at: datetime) -> str:
    """Scheduler's one-time expression, read in ScheduleExpressionTimezone (UTC here)."""
    return f"at({at.astimezone(UTC):%Y-%m-%dT%H:%M:%S})"


def default_schedule_name(at: datetime) -> str:
    return f"zego-resume-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def create_schedule(
    scheduler: Any,
    *,
    at: datetime,
    target_arn: str,
    role_arn: str,
    name: str,
    group: str,
    request: dict[str, Any],
) -> str:
    """A one-time schedule that hands the request to `target_arn` (the function, or its queue) at
    `at` and then deletes itself; returns the ScheduleArn.

    Raises ClientError (ConflictException when the name is taken, ValidationException, ...);
    nothing was scheduled then.
    """
    response = scheduler.create_schedule(
        Name=name,
        GroupName=group,
        ScheduleExpression=at_expression(at),
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},  # a ban ends at its time, not within a window
        ActionAfterCompletion="DELETE",
        State="ENABLED",
        Target={"Arn": target_arn, "RoleArn": role_arn, "Input": request_json(request)},
        Description=f"zego-resume: lift the publishing ban on {len(request['streamIds'])} stream(s)",
    )
    return str(response["ScheduleArn"])


def parse_at(text: str) -> datetime:
    """An ISO 8601 time, as UTC, cut to whole seconds (Scheduler's `at()` has no finer grain).

    A time without an offset is taken as UTC. Raises ValueError for anything else.
    """
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).replace(microsecond=0)


def milliseconds(at: datetime) -> int:
    return int(at.timestamp() * 1000)
