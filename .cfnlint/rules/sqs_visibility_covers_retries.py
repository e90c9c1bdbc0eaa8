"""cfn-lint rule E9101: an SQS queue that triggers a Lambda function keeps a message invisible for
at least 6 x the function's timeout plus the batching window.

AWS's guidance for SQS event sources: when the function is throttled, Lambda retries the
invocation while the batch stays invisible, and a shorter visibility timeout lets SQS hand the
same messages out again meanwhile (spending a receive of maxReceiveCount each time). cfn-lint's
own E3505 asks only for visibility >= timeout, and only of plain AWS::Lambda::EventSourceMapping
resources: cfn-lint 1.x validates SAM templates without running the SAM transform, so a SAM
function's `Events: {Type: SQS}` is checked by this rule alone.

Values that are not literal numbers cannot be checked here and are left alone. Used by
scripts/lint-template (`make lint-template`, tests/template).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

RETRY_FACTOR = 6
DEFAULT_VISIBILITY_TIMEOUT = 30  # SQS's default
DEFAULT_FUNCTION_TIMEOUT = 3  # Lambda's default


class SqsVisibilityCoversRetries(CloudFormationLintRule):  # type: ignore[misc]
    id = "E9101"
    shortdesc = "SQS visibility timeout >= 6 x function timeout + batching window"
    description = (
        "A queue that triggers a Lambda function needs a VisibilityTimeout of at least 6 times "
        "the function's Timeout plus the trigger's MaximumBatchingWindowInSeconds"
    )
    source_url = "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html"
    tags: ClassVar[list[str]] = ["resources", "lambda", "sqs"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        resources = cfn.template.get("Resources", {})
        matches = []
        for queue_id, function_id, timeout_value, window_value in _sqs_triggers(resources):
            queue_properties = resources[queue_id].get("Properties", {})
            visibility = _number(queue_properties.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT))
            timeout = _number(timeout_value)
            window = _number(window_value)
            if visibility is None or timeout is None or window is None:
                continue
            needed = RETRY_FACTOR * timeout + window
            if visibility >= needed:
                continue
            path = ["Resources", queue_id, "Properties"]
            if "VisibilityTimeout" in queue_properties:
                path.append("VisibilityTimeout")
            matches.append(
                RuleMatch(
                    path,
                    f"VisibilityTimeout of {queue_id} is {visibility} s, below {RETRY_FACTOR} x "
                    f"Timeout of {function_id} ({timeout} s) + MaximumBatchingWindowInSeconds "
                    f"({window} s) = {needed} s",
                )
            )
        return matches


def _sqs_triggers(resources: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    """(queue, function, function timeout, batching window) for every SQS -> Lambda trigger."""
    for name, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind == "AWS::Lambda::EventSourceMapping":
            queue_id = _logical_id(properties.get("EventSourceArn"))
            function_id = _logical_id(properties.get("FunctionName"))
            function = resources.get(function_id) if function_id else None
            if (
                _is_queue(resources, queue_id)
                and isinstance(function, dict)
                and function.get("Type") == "AWS::Lambda::Function"
            ):
                timeout = (function.get("Properties") or {}).get("Timeout", DEFAULT_FUNCTION_TIMEOUT)
                window = properties.get("MaximumBatchingWindowInSeconds", 0)
                yield str(queue_id), str(function_id), timeout, window
        elif kind == "AWS::Serverless::Function":  # Globals are merged in by cfn-lint
            timeout = properties.get("Timeout", DEFAULT_FUNCTION_TIMEOUT)
            for event in (properties.get("Events") or {}).values():
                if not isinstance(event, dict) or event.get("Type") != "SQS":
                    continue
                event_properties = event.get("Properties") or {}
                queue_id = _logical_id(event_properties.get("Queue"))
                if _is_queue(resources, queue_id):
                    window = event_properties.get("MaximumBatchingWindowInSeconds", 0)
                    yield str(queue_id), name, timeout, window


def _is_queue(resources: dict[str, Any], logical_id: str | None) -> bool:
    resource = resources.get(logical_id) if logical_id else None
    return isinstance(resource, dict) and resource.get("Type") == "AWS::SQS::Queue"


def _logical_id(value: Any) -> str | None:
    """The resource that {"Ref": X} or {"Fn::GetAtt": [X, "Arn"]} (or "X.Arn") names."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    if isinstance(value.get("Ref"), str):
        return str(value["Ref"])
    target = value.get("Fn::GetAtt")
    if isinstance(target, list) and target and isinstance(target[0], str):
        return target[0]
    if isinstance(target, str):
        return target.split(".", 1)[0]
    return None


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
