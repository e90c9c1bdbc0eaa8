"""Powertools logger and metrics shared by every room, and what one invocation records in them.
Cheap to build at import: nothing here does I/O."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from zego_resume.domain.request import INVALID_REQUEST

if TYPE_CHECKING:
    from zego_resume.adapters.rate_budget import BudgetStats
    from zego_resume.domain.disposition import Disposition
    from zego_resume.domain.retry import CallStats

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "zego-stream-resume"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "ZegoStreamModeration"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# urllib3 logs request lines at DEBUG and, at WARNING, "Failed to parse headers (url=<the full
# signed URL>)" for an answer with malformed headers; botocore logs response bodies at DEBUG
# (GetSecretValue's holds the secret). Whatever level the root logger is given
# (AWS_LAMBDA_LOG_LEVEL=DEBUG, say), only their errors get through, and those pass the filter below.
logging.getLogger("urllib3").setLevel(logging.ERROR)
logging.getLogger("botocore").setLevel(logging.WARNING)

_SIGNATURE = re.compile(r"(Signature=)[0-9A-Fa-f]+")


class RedactSignatures(logging.Filter):
    """Takes a ZEGO signature out of a record before any handler writes it. A defence in depth:
    no line of ours carries one, but a library's may (a URL in a warning, in a traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Signature=" in message:
            record.msg, record.args = _SIGNATURE.sub(r"\1<redacted>", message), ()
        if record.exc_info or record.exc_text:
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
            if "Signature=" in text:
                # Every formatter renders exc_info its own way; the redacted text goes in the message.
                record.msg = f"{record.getMessage()}\n{_SIGNATURE.sub(r'\1<redacted>', text)}"
                record.args, record.exc_info, record.exc_text = (), None, None
        return True


_REDACTION = RedactSignatures()


def protect_log_handlers() -> None:
    """Put the redaction on every handler this function's records can reach: Powertools' own,
    the root logger's (Lambda's runtime attaches one, which library loggers propagate to), and
    logging's last resort. Handler filters, not logger filters: only they see propagated records.
    Cheap and idempotent: called when the runtime is built, after the runtime's set-up."""
    handlers = [*logging.getLogger().handlers, *logger.handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if _REDACTION not in handler.filters:
            handler.addFilter(_REDACTION)


def record_invocation(
    dispositions: Sequence[Disposition],
    stats: CallStats,
    budget: BudgetStats | None = None,
    *,
    outage_seconds: float = 0.0,
    delays: Sequence[int] = (),
) -> None:
    """A log line per decision (WARNING, with the cause, for each one handed back), one for the
    invocation, and the invocation's metrics."""
    for disposition in dispositions:
        delivery = disposition.delivery
        if disposition.handed_back:
            _warn_handed_back(disposition)
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
    if budget is not None:
        _record_budget(budget)
    # Every invocation, 0 included: an alarm on its maximum must see the outage end.
    metrics.add_metric("ZegoOutageSeconds", MetricUnit.Seconds, round(outage_seconds, 1))
    if stats.probes:
        metrics.add_metric("ZegoProbes", MetricUnit.Count, stats.probes)
    if stats.retries_refused:
        metrics.add_metric("ZegoRetriesRefused", MetricUnit.Count, stats.retries_refused)
    if stats.splits:
        metrics.add_metric("ZegoCallsSplit", MetricUnit.Count, stats.splits)
    for delay in delays:
        metrics.add_metric("RedeliveryDelaySeconds", MetricUnit.Seconds, delay)
    logger.info(
        "invocation finished",
        extra={
            "decisions": len(dispositions),
            "zego_calls": stats.calls,
            "zego_retries": stats.retries,
            "zego_errors": dict(stats.errors),
            "secret_refreshes": stats.secret_refreshes,
            "outage_seconds": round(outage_seconds, 1),
            "calls_not_made_in_outage": stats.outage_refused,
            "retries_refused": stats.retries_refused,
        },
    )


def _warn_handed_back(disposition: Disposition) -> None:
    """Why a decision goes back to its source, on every receive: the cause must not wait for the
    last one to be seen."""
    delivery = disposition.delivery
    cause = disposition.cause
    if cause is not None:
        code, message, attempts = cause.code, cause.message, cause.attempts
    else:
        code, message, attempts = "DeadLetterUnsent", "a dead letter could not be sent", None
    logger.warning(
        "decision handed back for a retry",
        extra={
            "correlation_id": delivery.key,
            "source": delivery.source,
            "receive_count": delivery.receive_count,
            "error_code": code,
            "error_message": message,
            "attempts": attempts,
        },
    )


def record_redelivery_failures(causes: Sequence[str]) -> None:
    """Delays that could not be set: those messages come back after the queue's own timeout."""
    logger.warning(
        "the next delivery could not be delayed; the queue's visibility timeout applies",
        extra={"failed": len(causes), "causes": sorted(set(causes))[:5]},
    )


def _record_budget(budget: BudgetStats) -> None:
    if budget.missed:
        metrics.add_metric("RateSlotsMissed", MetricUnit.Count, budget.missed)
    if budget.late:
        metrics.add_metric("RateWritesLate", MetricUnit.Count, budget.late)
    if budget.ledger_unavailable:
        metrics.add_metric("RateLedgerUnavailable", MetricUnit.Count, 1)
        logger.warning(
            "the fleet's rate ledger could not be used: pacing alone at this environment's share",
            extra={"ledger_error": budget.ledger_unavailable},
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
