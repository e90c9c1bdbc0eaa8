"""Handler room: one invocation from event to answer.

Reads the event's items, has the domain resume them, dead-letters what failed for good, and
answers in the trigger's terms: `batchItemFailures` for SQS; a summary, or an exception that hands
the event to Lambda's async retries and OnFailure destination, for EventBridge and direct calls.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .config import Settings
from .dead_letters import DeadLetter, DeadLetterQueue
from .event_shapes import SQS, Item, read_event
from .observability import logger, metrics
from .outcome import Failure, settle
from .pacing import CallPacer
from .request import INVALID_REQUEST, InvalidRequest
from .resumer import Deadline, PendingDecision, Resumer, ResumeReport
from .secret_source import SecretsManagerCredentials
from .zego_client import ZegoClient

DEFAULT_REMAINING_SECONDS = 60.0  # when invoked without a Lambda context (plain Python)
MAX_ERROR_MESSAGE = 1000


class ResumeIncomplete(Exception):
    """Some stream ids of an EventBridge or direct event are not resumed yet. Raised so that
    Lambda retries the event and, at the end, hands it to the OnFailure destination."""


@dataclass(frozen=True)
class Runtime:
    """What outlives an invocation: settings, the ZEGO session, the secret cache, the pacer."""

    settings: Settings
    resumer: Resumer
    dead_letters: DeadLetterQueue

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        workers = settings.max_calls_per_second  # enough to keep the budget busy at ~1 s latency
        return cls(
            settings=settings,
            resumer=Resumer(
                ZegoClient(
                    settings.api_base_url,
                    is_test=settings.is_test,
                    read_timeout=settings.read_timeout_seconds,
                    pool_size=workers,
                ),
                SecretsManagerCredentials(settings.secret_id),
                CallPacer(settings.max_calls_per_second),
                is_test=settings.is_test,
                max_workers=workers,
            ),
            dead_letters=DeadLetterQueue(settings.dead_letter_queue_url),
        )


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The execution environment's runtime, built on the first event.

    Raises ConfigurationError: the event goes back to its source until the environment is fixed.
    """
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_settings(Settings.from_environ(os.environ))
    return _runtime


def reset_runtime() -> None:
    """Forget the runtime (tests change the environment between cases)."""
    global _runtime
    _runtime = None


@dataclass
class _Fate:
    """Where one item ends: dead letters to send, and whether it goes back for a retry."""

    item: Item
    letters: list[DeadLetter]
    retry: bool
    resumed: int = 0
    unsent: int = 0  # letters SQS did not accept: the item must go back to its source

    @property
    def handed_back(self) -> bool:
        return self.retry or self.unsent > 0


def handle_event(event: object, context: Any, rt: Runtime | None = None) -> dict[str, Any]:
    """One invocation. Not Powertools' BatchProcessor: it hands records to a handler one at a
    time, and packing the ids of every record into shared calls of 20 needs the whole batch
    before the first call; the partial-batch answer it would build is one list comprehension."""
    rt = rt or runtime()
    invocation_id = str(getattr(context, "aws_request_id", "") or "local-invocation")
    items = read_event(event, invocation_id=invocation_id)
    deadline = Deadline(_remaining_seconds(context))

    pending = [
        PendingDecision(key=str(index), request=item.request, receive_count=item.receive_count)
        for index, item in enumerate(items)
        if item.request is not None
    ]
    report = rt.resumer.resume(pending, deadline)
    fates = [_fate(str(index), item, report, rt.settings) for index, item in enumerate(items)]

    letters = [letter for fate in fates for letter in fate.letters]
    accepted = iter(rt.dead_letters.send(letters) if letters else [])
    for fate in fates:
        fate.unsent = sum(not next(accepted) for _ in fate.letters)

    _record(fates, report)
    if items[0].source == SQS:
        return {
            "batchItemFailures": [{"itemIdentifier": fate.item.key} for fate in fates if fate.handed_back]
        }
    return _answer_async(fates[0])


def _fate(key: str, item: Item, report: ResumeReport, settings: Settings) -> _Fate:
    invalid = item.invalid or report.rejected.get(key)
    if invalid is not None:
        return _Fate(item, [_invalid_letter(item, invalid)], retry=False)
    assert item.request is not None  # an item is either invalid or carries a request
    outcome = report.outcomes[key]
    final = (
        item.source == SQS
        and settings.max_receive_count is not None
        and item.receive_count >= settings.max_receive_count
    )
    settlement = settle(outcome, final_attempt=final)
    letters = [
        _letter(
            item,
            body=_json(item.request.with_stream_ids(stream_ids)),
            code=failure.code,
            message=failure.message,
            failure=failure,
        )
        for failure, stream_ids in settlement.dead_letters
    ]
    return _Fate(item, letters, retry=settlement.retry, resumed=len(outcome.resumed))


def _invalid_letter(item: Item, invalid: InvalidRequest) -> DeadLetter:
    return _letter(item, body=item.raw, code=INVALID_REQUEST, message=str(invalid), reason=invalid.reason)


def _letter(
    item: Item,
    *,
    body: str,
    code: str,
    message: str,
    reason: str | None = None,
    failure: Failure | None = None,
) -> DeadLetter:
    attributes = {
        "ErrorCode": code,
        "ErrorMessage": message[:MAX_ERROR_MESSAGE] or code,
        "Source": item.source,
        "OriginalMessageId": item.key,
    }
    if reason:
        attributes["ErrorReason"] = reason
    if failure is not None:
        attributes["Attempts"] = str(failure.attempts)
        if failure.zego_request_id:
            attributes["ZegoRequestId"] = failure.zego_request_id
    if item.source == SQS:
        attributes["ReceiveCount"] = str(item.receive_count)
    return DeadLetter(body=body, attributes=attributes)


def _answer_async(fate: _Fate) -> dict[str, Any]:
    if fate.handed_back:
        raise ResumeIncomplete(
            f"request {fate.item.key}: some stream ids are not resumed yet"
            + (" and could not be dead-lettered" if fate.unsent else "")
            + "; the event is handed back for a retry"
        )
    dead_lettered = [
        {
            "errorCode": letter.attributes["ErrorCode"],
            "errorMessage": letter.attributes["ErrorMessage"],
        }
        for letter in fate.letters
    ]
    status = "resumed" if not dead_lettered else ("partially-resumed" if fate.resumed else "dead-lettered")
    return {
        "status": status,
        "correlationId": fate.item.key,
        "resumedStreamIds": fate.resumed,
        "deadLettered": dead_lettered,
    }


def _record(fates: Sequence[_Fate], report: ResumeReport) -> None:
    """Logs a line per decision and the invocation's metrics."""
    for fate in fates:
        logger.info(
            "decision settled",
            extra={
                "correlation_id": fate.item.key,
                "source": fate.item.source,
                "request_id": fate.item.request.request_id if fate.item.request else None,
                "reason": fate.item.request.reason if fate.item.request else None,
                "receive_count": fate.item.receive_count,
                "resumed": fate.resumed,
                "dead_letters": {
                    letter.attributes["ErrorCode"]: letter.attributes["ErrorMessage"]
                    for letter in fate.letters
                },
                "dead_letters_unsent": fate.unsent,
                "retry": fate.retry,
            },
        )
    stats = report.stats
    metrics.add_metric("StreamIdsResumed", MetricUnit.Count, sum(fate.resumed for fate in fates))
    metrics.add_metric("ZegoCalls", MetricUnit.Count, stats.calls)
    metrics.add_metric("ZegoRetries", MetricUnit.Count, stats.retries)
    sends_failed = sum(fate.unsent for fate in fates)
    metrics.add_metric(
        "DeadLettered", MetricUnit.Count, sum(len(fate.letters) for fate in fates) - sends_failed
    )
    metrics.add_metric(
        "InvalidRequests",
        MetricUnit.Count,
        sum(
            1 for fate in fates if fate.letters and fate.letters[0].attributes["ErrorCode"] == INVALID_REQUEST
        ),
    )
    if sends_failed:
        metrics.add_metric("DeadLetterSendFailures", MetricUnit.Count, sends_failed)
    if stats.errors:
        _record_errors_by_code(stats.errors)
    logger.info(
        "invocation finished",
        extra={
            "decisions": len(fates),
            "zego_calls": stats.calls,
            "zego_retries": stats.retries,
            "zego_errors": dict(stats.errors),
            "secret_refreshes": stats.secret_refreshes,
        },
    )


def _record_errors_by_code(errors: dict[str, int]) -> None:
    # A dimension applies to every metric of a blob, so each code gets a blob of its own.
    from aws_lambda_powertools.metrics import single_metric

    for code, count in errors.items():
        with single_metric(
            name="ZegoErrors",
            unit=MetricUnit.Count,
            value=count,
            namespace=metrics.namespace,
            default_dimensions=metrics.default_dimensions,
        ) as metric:
            metric.add_dimension(name="ErrorCode", value=code)


@dataclass
class LocalContext:
    """The fields of Lambda's context that Powertools and this function read, for a caller
    outside Lambda; its remaining time counts down from DEFAULT_REMAINING_SECONDS."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "zego-resume-streams-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:zego-resume-streams-local"
    memory_limit_in_mb: int = 0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((DEFAULT_REMAINING_SECONDS - elapsed) * 1000))


_CONTEXT_FIELDS = ("aws_request_id", "function_name", "invoked_function_arn", "memory_limit_in_mb")


def as_lambda_context(context: Any) -> Any:
    """`context` if it has what Lambda's context has, else a LocalContext."""
    if all(hasattr(context, name) for name in _CONTEXT_FIELDS):
        return context
    return LocalContext()


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else DEFAULT_REMAINING_SECONDS


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
