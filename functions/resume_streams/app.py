"""Lambda entry point (docs/contract.md): lifts publishing bans on ZEGOCLOUD RTC streams.

Importing this module builds only cheap objects — no network, no AWS call, no configuration
read; the first event builds the runtime (settings, ZEGO session, secret cache).
"""

from typing import TYPE_CHECKING, Any

from zego_resume.dispatch import handle_event
from zego_resume.local_context import as_lambda_context
from zego_resume.observability import logger, metrics

if TYPE_CHECKING:  # typing only: importing it at run time costs cold-start milliseconds
    from aws_lambda_powertools.utilities.typing import LambdaContext


@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: "LambdaContext | None") -> dict[str, Any]:
    # A caller outside Lambda (a script, a test harness) may pass no context at all; Powertools'
    # context injection would fail on it, so it gets a stand-in with the same fields.
    return _handle(event, as_lambda_context(context))


@logger.inject_lambda_context(clear_state=True)
def _handle(event: dict[str, Any], context: "LambdaContext") -> dict[str, Any]:
    return handle_event(event, context)
