"""Powertools logger and metrics shared by every room, and what one invocation records in them.
Cheap to build at import: nothing here does I/O."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from zego_resume.domain.request import INVALID_REQUEST

if TYPE_CHECKING:
    from zego_resume.domain.disposition import Disposition
    from zego_resume.domain.retry import CallStats

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "zego-stream-resume"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ZegoStreamModeration"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# At DEBUG, urllib3 logs every request line (ours carry the signature in the query string) and
# botocore logs response bodies (GetSecretValue's holds the secret). Whatever level the root
# logger is given (AWS_LAMBDA_LOG_LEVEL=DEBUG, say), those lines stay off.
for _chatty in ("urllib3", "botocore"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)


def record_invocation(dispositions: Sequence[Disposition], stats: CallStats) -> None:
    """A log line per decision, one for the invocation, and the invocation's metrics."""
    for disposition in dispositions:
        delivery = disposition.delivery
        logger.info(
            "decision settled",
            extra={
                "correlation_id": delivery.key,
                "source": delivery.source,
                "request_id": delivery.request.request_id if delivery.request else None,
                "reason": delivery.request.reason if delivery.request else None,
                "receive_count": delivery.receive_count,
                "resumed": disposition.resumed,
                "dead_letters": {
                    letter.attributes["ErrorCode"]: letter.attributes["ErrorMessage"]
                    for letter in disposition.letters
                },
                "dead_letters_unsent": disposition.unsent,
                "retry": disposition.retry,
            },
        )
    metrics.add_metric("StreamIdsResumed", MetricUnit.Count, sum(d.resumed for d in dispositions))
    metrics.add_metric("ZegoCalls", MetricUnit.Count, stats.calls)
    metrics.add_metric("ZegoRetries", MetricUnit.Count, stats.retries)
    sends_failed = sum(d.unsent for d in dispositions)
    metrics.add_metric(
        "DeadLettered", MetricUnit.Count, sum(len(d.letters) for d in dispositions) - sends_failed
    )
    metrics.add_metric(
        "InvalidRequests",
        MetricUnit.Count,
        sum(1 for d in dispositions if d.letters and d.letters[0].attributes["ErrorCode"] == INVALID_REQUEST),
    )
    if sends_failed:
        metrics.add_metric("DeadLetterSendFailures", MetricUnit.Count, sends_failed)
    if stats.errors:
        _record_errors_by_code(stats.errors)
    logger.info(
        "invocation finished",
        extra={
            "decisions": len(dispositions),
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
