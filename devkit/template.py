"""template.yaml as data, and just enough CloudFormation to read it as a deployment would: the
parameters' values, the conditions, and the intrinsic functions the template uses, resolved for
one set of parameters. What only exists once deployed (a queue's URL, a function's ARN) comes
from the caller, or is spelled as a recognisable placeholder.

Tests of the template, the demo, the local stack and the benchmarks read the template's defaults
here, so that none of them hard-codes a setting the template owns: `default_fleet_shape()` is the
fleet as a default deployment makes it (instances, the ZEGO budget and each instance's share, how
long a failing decision is kept), `default_function_environment()` the function's variables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
FUNCTION_ID = "ResumeStreamsFunction"


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) read into their long
    form ({"Ref": ...}, {"Fn::GetAtt": [...]}, ...), as CloudFormation itself reads them."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        assert isinstance(node, yaml.ScalarNode)
        value = loader.construct_scalar(node)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """A template (ours by default) as a JSON-like document, intrinsic functions in long form."""
    document = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader + tags
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a template")
    return document


# The parameters without a default, with values that resolve (only a deployment needs real ones).
REQUIRED_PARAMETERS = {
    "ZegoSecretName": "zego/resume-streams",
    "ProducerPrincipalArns": "arn:aws:iam::123456789012:role/moderation-producer",
}


def default_deployment(path: Path = TEMPLATE, **parameters: str) -> Deployment:
    """A deployment of the template at its defaults (and `parameters`), required parameters
    given placeholder values."""
    return Deployment(load_template(path), {**REQUIRED_PARAMETERS, **parameters})


def default_function_environment(path: Path = TEMPLATE, **parameters: str) -> dict[str, str]:
    """The function's environment variables as the template's default parameters (and
    `parameters`) set them (resources that exist only once deployed are placeholders)."""
    variables = default_deployment(path, **parameters).resource(FUNCTION_ID)["Properties"]["Environment"][
        "Variables"
    ]
    return {name: str(value) for name, value in variables.items()}


@dataclass(frozen=True)
class FleetShape:
    """What one deployment makes of the fleet, read from the resources as deployed (the
    function's reserved concurrency and variables, the queue's settings), not from parameters."""

    # how many instances, and how the SQS poller feeds them
    max_concurrent_instances: int  # ReservedConcurrentExecutions
    sqs_maximum_concurrency: int  # the SQS trigger's ScalingConfig.MaximumConcurrency
    # ZEGO's budget
    fleet_calls_per_second: int  # ZEGO_FLEET_CALLS_PER_SECOND, all instances together
    per_instance_calls_per_second: int  # ZEGO_MAX_CALLS_PER_SECOND, an instance pacing alone
    rate_ledger: bool  # ZEGO_RATE_LEDGER_TABLE is set: instances share the budget
    arrival_jitter_ms: int  # ZEGO_ARRIVAL_JITTER_MS
    # riding out an outage
    outage_probe_seconds: int  # ZEGO_OUTAGE_PROBE_SECONDS
    give_up_after_hours: int  # the GiveUpAfterHours parameter
    decision_max_age_seconds: int  # DECISION_MAX_AGE_SECONDS
    redelivery_max_delay_seconds: int  # REDELIVERY_MAX_DELAY_SECONDS
    max_receive_count: int  # the queue's maxReceiveCount, = MAX_RECEIVE_COUNT
    message_retention_seconds: int  # the queue's MessageRetentionPeriod
    visibility_timeout_seconds: int  # the queue's VisibilityTimeout
    function_timeout_seconds: int

    def redelivery_delay_seconds(self, receive: int) -> int:
        """How long a decision handed back for a transient reason on this receive (1, 2, ...)
        waits before the next: min(cap, 2 x 2^(receive-1))."""
        return redelivery_delay_seconds(receive, self.redelivery_max_delay_seconds)


def fleet_shape(deployment: Deployment) -> FleetShape:
    function = deployment.resource(FUNCTION_ID)["Properties"]
    variables = function["Environment"]["Variables"]
    trigger = deployment.template["Resources"][FUNCTION_ID]["Properties"]["Events"]["ResumeRequests"]
    queue_id = _logical_id(trigger["Properties"]["Queue"])
    queue = deployment.resource(queue_id)["Properties"]
    scaling = function["Events"]["ResumeRequests"]["Properties"]["ScalingConfig"]
    max_receive_count = int(queue["RedrivePolicy"]["maxReceiveCount"])
    if int(variables["MAX_RECEIVE_COUNT"]) != max_receive_count:
        raise ValueError("MAX_RECEIVE_COUNT is not the queue's maxReceiveCount")
    return FleetShape(
        max_concurrent_instances=int(function["ReservedConcurrentExecutions"]),
        sqs_maximum_concurrency=int(scaling["MaximumConcurrency"]),
        fleet_calls_per_second=int(variables["ZEGO_FLEET_CALLS_PER_SECOND"]),
        per_instance_calls_per_second=int(variables["ZEGO_MAX_CALLS_PER_SECOND"]),
        rate_ledger="ZEGO_RATE_LEDGER_TABLE" in variables,
        arrival_jitter_ms=int(variables["ZEGO_ARRIVAL_JITTER_MS"]),
        outage_probe_seconds=int(variables["ZEGO_OUTAGE_PROBE_SECONDS"]),
        give_up_after_hours=int(deployment.parameter("GiveUpAfterHours")),
        decision_max_age_seconds=int(variables["DECISION_MAX_AGE_SECONDS"]),
        redelivery_max_delay_seconds=int(variables["REDELIVERY_MAX_DELAY_SECONDS"]),
        max_receive_count=max_receive_count,
        message_retention_seconds=int(queue["MessageRetentionPeriod"]),
        visibility_timeout_seconds=int(queue["VisibilityTimeout"]),
        function_timeout_seconds=int(function["Timeout"]),
    )


def default_fleet_shape(path: Path = TEMPLATE, **parameters: str) -> FleetShape:
    """The fleet as the template's default parameters (and `parameters`) make it."""
    return fleet_shape(default_deployment(path, **parameters))


def redelivery_delay_seconds(receive: int, cap: int) -> int:
    """The visibility a decision handed back for a transient reason gets on its `receive`th
    receive: min(cap, 2 x 2^(receive-1)) seconds."""
    if receive < 1:
        raise ValueError("receives count from 1")
    return min(cap, 2 << min(receive - 1, 62))


def most_receives_before_give_up(max_age_seconds: int, cap: int) -> int:
    """The most receives a decision can have until its age exceeds `max_age_seconds`: every
    receive fails at once and waits only its redelivery delay, so receive n comes
    sum(delay(1..n-1)) seconds after the first. The age rule dead-letters on that receive."""
    receive, elapsed = 1, 0
    while elapsed <= max_age_seconds:
        elapsed += redelivery_delay_seconds(receive, cap)
        receive += 1
    return receive


def _logical_id(value: Any) -> str:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    raise ValueError(f"not a reference to a resource: {value!r}")


MODERATION_RULE_ID = "ModerationEventsRule"


def moderation_event_pattern(
    path: Path = TEMPLATE, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The EventPattern of the rule that routes moderation events to the resume queue, for the
    template's default parameters (or `parameters`): what the CLI's `send --event-bus` defaults,
    the demo and the local stack must match."""
    deployment = default_deployment(path, **dict(parameters or {}))
    pattern = deployment.resource(MODERATION_RULE_ID)["Properties"]["EventPattern"]
    assert isinstance(pattern, dict)
    return pattern


REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "zego-stream-resume"

_NO_VALUE = object()


class RuleViolation(ValueError):
    """The parameters break one of the template's Rules: CloudFormation would refuse them."""


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Deployment:
    """One deployment of a template: its parameters, and the values of its resources."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str] = field(default_factory=dict)
    # logical id -> {"Ref": ..., "Arn": ..., ...}; anything missing resolves to a placeholder.
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    region: str = REGION
    account_id: str = ACCOUNT_ID
    stack_name: str = STACK_NAME

    def __post_init__(self) -> None:
        declared = self.template.get("Parameters", {})
        unknown = set(self.parameters) - set(declared)
        if unknown:
            raise KeyError(f"the template declares no parameter {sorted(unknown)}")
        for name, value in self.parameters.items():
            allowed = declared[name].get("AllowedValues")
            if allowed is not None and str(value) not in {str(item) for item in allowed}:
                raise ValueError(f"parameter {name} must be one of {allowed}, not {value!r}")
        # CloudFormation checks the template's Rules before it creates anything: so do we.
        for rule_name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self._condition(rule["RuleCondition"]):
                continue
            for assertion in rule.get("Assertions", []):
                if not self._condition(assertion["Assert"]):
                    description = assertion.get("AssertDescription", "")
                    raise RuleViolation(f"rule {rule_name} fails: {description}")

    # ----- parameters and conditions ---------------------------------------------------------

    def parameter(self, name: str) -> Any:
        declaration = self.template["Parameters"][name]
        if name in self.parameters:
            value = self.parameters[name]
        elif "Default" in declaration:
            value = str(declaration["Default"])
        else:
            raise KeyError(f"parameter {name} has no default: pass a value")
        if declaration["Type"] == "CommaDelimitedList":
            return [item.strip() for item in value.split(",")]
        return value

    def condition(self, name: str) -> bool:
        return bool(self._condition(self.template["Conditions"][name]))

    def exists(self, logical_id: str) -> bool:
        """Whether the resource is created: it has no Condition, or its condition holds."""
        name = self.template["Resources"][logical_id].get("Condition")
        return name is None or self.condition(name)

    def _condition(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            (key, value), *_ = node.items()
            if key == "Fn::Equals":
                left, right = (self.resolve(item) for item in value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self._condition(value[0])
            if key == "Fn::And":
                return all(self._condition(item) for item in value)
            if key == "Fn::Or":
                return any(self._condition(item) for item in value)
            if key == "Condition":
                return self.condition(value)
            if key == "Fn::Contains":  # Rules only
                items, item = (self.resolve(part) for part in value)
                return str(item) in {str(each) for each in items}
        return self.resolve(node)

    # ----- intrinsic functions ---------------------------------------------------------------

    def resource(self, logical_id: str) -> dict[str, Any]:
        """A resource with its properties resolved."""
        resolved = self.resolve(self.template["Resources"][logical_id])
        assert isinstance(resolved, dict)
        return resolved

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, value), *_ = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, value)
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.template.get("Resources", {}):
            return self.resources.get(name, {}).get("Ref", f"<{name}>")
        raise KeyError(f"Ref to unknown name {name}")

    def _get_att(self, value: Any) -> Any:
        logical_id, attribute = value.split(".", 1) if isinstance(value, str) else value
        if logical_id not in self.template["Resources"]:
            raise KeyError(f"Fn::GetAtt of unknown resource {logical_id}")
        return self.resources.get(logical_id, {}).get(attribute, f"<{logical_id}.{attribute}>")

    def _if(self, value: list[Any]) -> Any:
        name, when_true, when_false = value
        return self.resolve(when_true if self.condition(name) else when_false)

    def _find_in_map(self, value: list[Any]) -> Any:
        name, top, second = (str(self.resolve(item)) for item in value)
        try:
            return self.template["Mappings"][name][top][second]
        except KeyError:
            # What CloudFormation answers too, before creating anything.
            raise KeyError(f"Unable to get mapping for {name}::{top}::{second}") from None

    def _select(self, value: list[Any]) -> Any:
        index, items = (self.resolve(item) for item in value)
        return items[int(index)]

    def _split(self, value: list[Any]) -> list[str]:
        separator, text = (self.resolve(item) for item in value)
        return str(text).split(str(separator))

    def _join(self, value: list[Any]) -> str:
        separator, items = value
        return str(separator).join(str(item) for item in self.resolve(items))

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else value
        local = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(local[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._get_att(name))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


_FUNCTIONS: dict[str, Callable[[Deployment, Any], Any]] = {
    "Ref": Deployment._ref,
    "Fn::GetAtt": Deployment._get_att,
    "Fn::If": Deployment._if,
    "Fn::FindInMap": Deployment._find_in_map,
    "Fn::Select": Deployment._select,
    "Fn::Join": Deployment._join,
    "Fn::Split": Deployment._split,
    "Fn::Sub": Deployment._sub,
}


def walk(node: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], Any]]:
    """Every (path, value) pair of a JSON-like document, depth first."""
    pairs: list[tuple[tuple[str | int, ...], Any]] = [(path, node)]
    if isinstance(node, dict):
        for key, value in node.items():
            pairs.extend(walk(value, (*path, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            pairs.extend(walk(value, (*path, index)))
    return pairs
