"""cfn-lint rule E9102: the queue that triggers the function keeps a decision until the function's
age rule has dead-lettered it, and SQS's own redrive never decides first.

The function hands a decision that fails for a transient reason back to the queue for
min(REDELIVERY_MAX_DELAY_SECONDS, 2 x 2^(receive-1)) seconds, and dead-letters it with its reason
once it has been on the queue longer than DECISION_MAX_AGE_SECONDS. So, for the queue:

- MessageRetentionPeriod >= DECISION_MAX_AGE_SECONDS + REDELIVERY_MAX_DELAY_SECONDS +
  VisibilityTimeout: the last hand-back before the give-up age, then one invocation lost to a
  crash or timeout, and the decision is still there to be dead-lettered (SQS drops an expired
  message silently);
- RedrivePolicy.maxReceiveCount >= the most receives a decision can have before its age passes
  DECISION_MAX_AGE_SECONDS, when every receive fails at once and waits only the delay above
  (receive n comes sum(delay(1..n-1)) s after the first): otherwise SQS moves it to the DLQ
  without its reason while the function is still riding out an outage;
- MAX_RECEIVE_COUNT, when set, is that same maxReceiveCount;
- REDELIVERY_MAX_DELAY_SECONDS is a visibility timeout SQS accepts (at most 12 hours).

Values may be literal, Refs to parameters with AllowedValues, or Fn::FindInMap keyed by such
parameters (the template's GiveUpAfterHours table): every combination of the parameters' values
is checked, and a finding names the values it fails for. Values that cannot be resolved this
way are left alone. Functions without DECISION_MAX_AGE_SECONDS are left alone. Like E9101, this
reads SAM functions' `Events: {Type: SQS}` and plain AWS::Lambda::EventSourceMapping resources.
Used by scripts/lint-template (`make lint-template`, tests/template).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

DEFAULT_VISIBILITY_TIMEOUT = 30  # SQS's defaults
DEFAULT_RETENTION = 345600
MAX_VISIBILITY_TIMEOUT = 43200  # ChangeMessageVisibility's ceiling
MAX_SCENARIOS = 4096  # parameter combinations checked per trigger

AGE = "DECISION_MAX_AGE_SECONDS"
CAP = "REDELIVERY_MAX_DELAY_SECONDS"
RECEIVES = "MAX_RECEIVE_COUNT"


class _Unresolvable(Exception):
    pass


class SqsRetentionCoversGiveUp(CloudFormationLintRule):  # type: ignore[misc]
    id = "E9102"
    shortdesc = "SQS retention and maxReceiveCount outlast the function's give-up age"
    description = (
        "The queue that triggers the function keeps a message for at least "
        "DECISION_MAX_AGE_SECONDS + REDELIVERY_MAX_DELAY_SECONDS + VisibilityTimeout, and its "
        "maxReceiveCount covers the most receives possible before that age"
    )
    source_url = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html"
    tags: ClassVar[list[str]] = ["resources", "lambda", "sqs"]

    def match(self, cfn: Any) -> list[RuleMatch]:
        template = cfn.template
        resources = template.get("Resources", {})
        matches: list[RuleMatch] = []
        for queue_id, function_id, variables in _sqs_triggers(resources):
            if not isinstance(variables, dict) or AGE not in variables:
                continue
            queue = resources[queue_id].get("Properties") or {}
            redrive = queue.get("RedrivePolicy") if isinstance(queue.get("RedrivePolicy"), dict) else None
            values = {
                "age": variables.get(AGE),
                "cap": variables.get(CAP, 0),
                "visibility": queue.get("VisibilityTimeout", DEFAULT_VISIBILITY_TIMEOUT),
                "retention": queue.get("MessageRetentionPeriod", DEFAULT_RETENTION),
            }
            if redrive is not None and "maxReceiveCount" in redrive:
                values["max_receive_count"] = redrive["maxReceiveCount"]
            if RECEIVES in variables:
                values["env_receive_count"] = variables[RECEIVES]
            seen: set[str] = set()
            for scenario, resolved in _scenarios(template, values):
                for path, message in _problems(queue_id, function_id, resolved):
                    text = f"{message}{scenario}"
                    if text not in seen:
                        seen.add(text)
                        matches.append(RuleMatch(["Resources", *path], text))
        return matches


def _problems(queue_id: str, function_id: str, value: dict[str, int]) -> Iterator[tuple[list[str], str]]:
    age, cap = value.get("age"), value.get("cap")
    visibility, retention = value.get("visibility"), value.get("retention")
    if age is None or cap is None:
        return
    if cap > MAX_VISIBILITY_TIMEOUT:
        yield (
            [function_id, "Properties", "Environment", "Variables", CAP],
            f"{CAP} of {function_id} is {cap} s, above the {MAX_VISIBILITY_TIMEOUT} s SQS allows a "
            "message to stay invisible",
        )
    if visibility is not None and retention is not None and retention < age + cap + visibility:
        yield (
            [queue_id, "Properties", "MessageRetentionPeriod"],
            f"MessageRetentionPeriod of {queue_id} is {retention} s, below {AGE} of {function_id} "
            f"({age} s) + {CAP} ({cap} s) + VisibilityTimeout ({visibility} s) = "
            f"{age + cap + visibility} s: a decision could expire before it is dead-lettered",
        )
    receives = value.get("max_receive_count")
    if receives is not None and cap > 0:
        most = most_receives_before_give_up(age, cap)
        if receives < most:
            yield (
                [queue_id, "Properties", "RedrivePolicy", "maxReceiveCount"],
                f"maxReceiveCount of {queue_id} is {receives}, below the {most} receives a decision "
                f"can have before it is {age} s old ({AGE} of {function_id}) when every receive fails "
                f"at once and waits min({cap}, 2 x 2^(receive-1)) s: SQS would move it to the DLQ "
                "without its reason",
            )
    env_receives = value.get("env_receive_count")
    if receives is not None and env_receives is not None and env_receives != receives:
        yield (
            [function_id, "Properties", "Environment", "Variables", RECEIVES],
            f"{RECEIVES} of {function_id} is {env_receives}, not the maxReceiveCount of {queue_id} "
            f"({receives})",
        )


def most_receives_before_give_up(max_age: int, cap: int) -> int:
    """The first receive on which a decision failing at once every time is older than max_age."""
    receive, elapsed = 1, 0
    while elapsed <= max_age:
        elapsed += min(cap, 2 << min(receive - 1, 62))
        receive += 1
    return receive


# ----- resolving literals, Refs and Fn::FindInMap over the parameters' values ------------------


def _scenarios(template: dict[str, Any], values: dict[str, Any]) -> Iterator[tuple[str, dict[str, int]]]:
    """(" (with P=v, ...)" or "", the values resolved) for every combination of the parameters the
    values depend on. A value that cannot be resolved is left out."""
    names = sorted({name for value in values.values() for name in _parameters(value)})
    choices = []
    for name in names:
        options = _options(template, name, values)
        if options is None:
            return
        choices.append(options)
    for count, combination in enumerate(itertools.product(*choices)):
        if count >= MAX_SCENARIOS:
            return
        assignment = dict(zip(names, combination, strict=True))
        resolved = {}
        for key, value in values.items():
            try:
                number = _number(_resolve(template, value, assignment))
            except _Unresolvable:
                continue
            if number is not None:
                resolved[key] = number
        label = ", ".join(f"{name}={value}" for name, value in assignment.items())
        yield (f" (with {label})" if label else ""), resolved


def _parameters(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str) and not value["Ref"].startswith("AWS::"):
            yield value["Ref"]
        for item in value.values():
            yield from _parameters(item)
    elif isinstance(value, list):
        for item in value:
            yield from _parameters(item)


def _options(template: dict[str, Any], name: str, values: dict[str, Any]) -> list[str] | None:
    """The values a parameter can take: its AllowedValues, else the keys of the mapping it indexes."""
    declared = template.get("Parameters", {}).get(name)
    if not isinstance(declared, dict):
        return None
    if isinstance(declared.get("AllowedValues"), list):
        return [str(item) for item in declared["AllowedValues"]]
    for value in values.values():
        for mapping, level in _map_keys_indexed_by(value, name):
            table = template.get("Mappings", {}).get(mapping)
            if isinstance(table, dict) and level == 1:
                return [str(key) for key in table]
    return None


def _map_keys_indexed_by(value: Any, name: str) -> Iterator[tuple[str, int]]:
    if isinstance(value, dict):
        arguments = value.get("Fn::FindInMap")
        if isinstance(arguments, list) and len(arguments) == 3 and isinstance(arguments[0], str):
            for level in (1, 2):
                if arguments[level] == {"Ref": name}:
                    yield arguments[0], level
        for item in value.values():
            yield from _map_keys_indexed_by(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _map_keys_indexed_by(item, name)


def _resolve(template: dict[str, Any], value: Any, assignment: dict[str, str]) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            if argument in assignment:
                return assignment[argument]
            raise _Unresolvable
        if key == "Fn::FindInMap" and isinstance(argument, list) and len(argument) == 3:
            mapping, top, second = (str(_resolve(template, item, assignment)) for item in argument)
            try:
                return template["Mappings"][mapping][top][second]
            except (KeyError, TypeError):
                raise _Unresolvable from None
        raise _Unresolvable
    if isinstance(value, (dict, list)):
        raise _Unresolvable
    return value


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


# ----- which queue triggers which function (as in sqs_visibility_covers_retries.py) ------------


def _sqs_triggers(resources: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(queue, function, the function's environment variables) for every SQS -> Lambda trigger."""
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
                yield str(queue_id), str(function_id), _variables(function.get("Properties") or {})
        elif kind == "AWS::Serverless::Function":  # Globals are merged in by cfn-lint
            for event in (properties.get("Events") or {}).values():
                if not isinstance(event, dict) or event.get("Type") != "SQS":
                    continue
                queue_id = _logical_id((event.get("Properties") or {}).get("Queue"))
                if _is_queue(resources, queue_id):
                    yield str(queue_id), name, _variables(properties)


def _variables(properties: dict[str, Any]) -> Any:
    environment = properties.get("Environment")
    return environment.get("Variables") if isinstance(environment, dict) else None


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
