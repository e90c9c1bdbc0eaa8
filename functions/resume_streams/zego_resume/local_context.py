"""A stand-in for Lambda's context object, for a caller outside Lambda: a script, a test harness,
the local stack's poller, the benchmarks (they all use this one). Its remaining time counts down
from `timeout_seconds`, as Lambda's does."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT_SECONDS = 60.0  # the template's function timeout


@dataclass
class LocalContext:
    """The fields of Lambda's context that Powertools and this function read."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    function_name: str = "zego-resume-streams-local"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/zego-resume-streams-local"
    log_stream_name: str = "local"
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


_CONTEXT_FIELDS = ("aws_request_id", "function_name", "invoked_function_arn", "memory_limit_in_mb")


def as_lambda_context(context: Any) -> Any:
    """`context` if it has what Lambda's context has, else a LocalContext."""
    if all(hasattr(context, name) for name in _CONTEXT_FIELDS):
        return context
    return LocalContext()


def remaining_seconds(context: Any) -> float:
    """The invocation's remaining time, or the default timeout for a context without a clock."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000.0 if callable(remaining) else DEFAULT_TIMEOUT_SECONDS
