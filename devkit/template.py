"""template.yaml as data, and just enough CloudFormation to read it as a deployment would: the
parameters' values, the conditions, and the intrinsic functions the template uses, resolved for
one set of parameters. What only exists once deployed (a queue's URL, a function's ARN) comes
from the caller, or is spelled as a recognisable placeholder.

Tests of the template, the demo, the local stack and the benchmarks read the template's defaults
here, so that none of them hard-codes a setting the template owns.
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


def default_function_environment(path: Path = TEMPLATE) -> dict[str, str]:
    """The function's environment variables as the template's default parameters set them
    (resources that exist only once deployed are placeholders)."""
    deployment = Deployment(load_template(path), {"ZegoSecretName": "zego/resume-streams"})
    variables = deployment.resource(FUNCTION_ID)["Properties"]["Environment"]["Variables"]
    return {name: str(value) for name, value in variables.items()}


MODERATION_RULE_ID = "ModerationEventsRule"


def moderation_event_pattern(
    path: Path = TEMPLATE, parameters: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The EventPattern of the rule that routes moderation events to the resume queue, for the
    template's default parameters (or `parameters`): what the CLI's `send --event-bus` defaults,
    the demo and the local stack must match."""
    deployment = Deployment(
        load_template(path), dict(parameters or {"ZegoSecretName": "zego/resume-streams"})
    )
    pattern = deployment.resource(MODERATION_RULE_ID)["Properties"]["EventPattern"]
    assert isinstance(pattern, dict)
    return pattern


REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "zego-stream-resume"

_NO_VALUE = object()
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
