"""Where an event the CLI publishes goes: the source and detail-type the function's rule expects,
and whether any rule on a bus would deliver an event at all.

The defaults are template.yaml's (parameters ModerationEventSources and ModerationDetailTypes).
The CLI is installed on its own and does not read the template at run time;
tests/cli/test_routing.py fails the moment the two disagree.

EventBridge drops an event that no rule matches without a word (PutEvents still answers with an
EventId), so `send --event-bus` asks first: TestEventPattern against each enabled rule of the bus,
or, where the service does not answer TestEventPattern (moto), the matcher below, which knows
EventBridge's common pattern operators.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from resumectl.aws import unsupported_action

# template.yaml, Parameters: ModerationEventSources and ModerationDetailTypes (their Default).
EVENT_SOURCES = ("moderation.appeals", "moderation.rules")
DETAIL_TYPES = ("StreamBanLifted",)
DEFAULT_EVENT_SOURCE = EVENT_SOURCES[0]
DEFAULT_DETAIL_TYPE = DETAIL_TYPES[0]

PLACEHOLDER_ACCOUNT = "123456789012"


@dataclass(frozen=True)
class RouteCheck:
    """What the rules of a bus would do with one event."""

    bus: str
    rules_seen: int  # enabled rules with an event pattern
    matching: tuple[str, ...]  # names of the rules that match
    how: str  # "TestEventPattern" or "local matcher"

    @property
    def delivered(self) -> bool:
        return bool(self.matching)


def sample_event(
    *, source: str, detail_type: str, detail: Mapping[str, Any], rule_arn: str
) -> dict[str, Any]:
    """The event EventBridge would build from PutEvents, in the account and region of a rule."""
    parts = rule_arn.split(":")
    region = parts[3] if len(parts) > 4 and parts[3] else "us-east-1"
    account = parts[4] if len(parts) > 4 and parts[4] else PLACEHOLDER_ACCOUNT
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [],
        "detail": dict(detail),
    }


def check_route(
    events: Any, *, bus: str, source: str, detail_type: str, detail: Mapping[str, Any]
) -> RouteCheck:
    """Which enabled rules on `bus` match the event. Raises ClientError when the rules cannot be
    listed (e.g. ResourceNotFoundException for a missing bus, AccessDeniedException)."""
    matching: list[str] = []
    seen = 0
    how = "TestEventPattern"
    service_tests = True
    for rule in _rules(events, bus):
        pattern = rule.get("EventPattern")
        if rule.get("State", "ENABLED") != "ENABLED" or not pattern:
            continue  # a disabled rule delivers nothing; a schedule-only rule takes no events
        seen += 1
        event = sample_event(
            source=source, detail_type=detail_type, detail=detail, rule_arn=str(rule.get("Arn", ""))
        )
        result = _test_event_pattern(events, pattern, event) if service_tests else None
        if result is None:
            service_tests = False
            how = "local matcher"
            result = matches(json.loads(pattern), event)
        if result:
            matching.append(str(rule["Name"]))
    return RouteCheck(bus=bus, rules_seen=seen, matching=tuple(matching), how=how)


def _rules(events: Any, bus: str) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        page = events.list_rules(EventBusName=bus, **({"NextToken": token} if token else {}))
        yield from page.get("Rules", [])
        token = page.get("NextToken")
        if not token:
            return


def _test_event_pattern(events: Any, pattern: str, event: dict[str, Any]) -> bool | None:
    """The service's answer, or None where it has no TestEventPattern."""
    try:
        answer = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(event))
    except ClientError as error:
        if unsupported_action(error):
            return None
        raise
    result = answer.get("Result")
    return result if isinstance(result, bool) else None  # moto answers 200 with no body


# --- EventBridge's pattern matching, for a service without TestEventPattern -----------------------


class _Unknown(Exception):
    """A pattern operator this matcher does not know."""


def matches(pattern: Any, event: Any) -> bool:
    """Whether an EventBridge event pattern matches an event. An operator not known here counts
    as a match: the check warns about events that are certainly dropped, never about doubtful
    ones."""
    try:
        return _match_object(pattern, event)
    except _Unknown:
        return True


def _match_object(pattern: Mapping[str, Any], event: Any) -> bool:
    if not isinstance(pattern, Mapping):
        raise _Unknown
    for key, expected in pattern.items():
        if key == "$or" and isinstance(expected, list):
            if not any(_match_object(option, event) for option in expected):
                return False
            continue
        present = isinstance(event, Mapping) and key in event
        value = event.get(key) if isinstance(event, Mapping) else None
        if isinstance(expected, Mapping):
            if not present or not _match_object(expected, value):
                return False
        elif isinstance(expected, list):
            if not _match_values(expected, present, value):
                return False
        else:
            raise _Unknown
    return True


def _match_values(expected: list[Any], present: bool, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for condition in expected:
        if isinstance(condition, Mapping):
            if _match_operator(condition, present, values):
                return True
        elif present and any(item == condition and type(item) is type(condition) for item in values):
            return True
    return False


def _match_operator(condition: Mapping[str, Any], present: bool, values: list[Any]) -> bool:
    if len(condition) != 1:
        raise _Unknown
    ((operator, operand),) = condition.items()
    if operator == "exists":
        return present is bool(operand)
    if not present:
        return False
    strings = [item for item in values if isinstance(item, str)]
    if operator == "prefix" and isinstance(operand, str):
        return any(item.startswith(operand) for item in strings)
    if operator == "suffix" and isinstance(operand, str):
        return any(item.endswith(operand) for item in strings)
    if operator == "equals-ignore-case" and isinstance(operand, str):
        return any(item.casefold() == operand.casefold() for item in strings)
    if operator == "anything-but":
        excluded = operand if isinstance(operand, list) else [operand]
        if all(not isinstance(item, Mapping) for item in excluded):
            return all(item not in excluded for item in values)
    raise _Unknown
