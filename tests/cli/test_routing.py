"""Routing: `send --event-bus` publishes what the stack's rule matches by default, and refuses to
publish an event that no rule on the bus would deliver (EventBridge drops it without a word)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from devkit.template import TEMPLATE, Deployment, load_template, moderation_event_pattern
from resumectl import cli, publish, routing
from resumectl.cli import main
from zegosim.aws import Stack, client, drain

from .fake_sqs import client_error

pytestmark = pytest.mark.enable_socket


def test_the_cli_defaults_are_the_templates_rule_defaults() -> None:
    # Given the template's default parameters
    deployment = Deployment(load_template(TEMPLATE), {"ZegoSecretName": "x"})

    # Then the CLI's routing table is the template's, and its defaults are among them
    assert list(routing.EVENT_SOURCES) == deployment.parameter("ModerationEventSources")
    assert list(routing.DETAIL_TYPES) == deployment.parameter("ModerationDetailTypes")
    pattern = moderation_event_pattern()
    assert routing.DEFAULT_EVENT_SOURCE in pattern["source"]
    assert routing.DEFAULT_DETAIL_TYPE in pattern["detail-type"]


def test_the_default_event_matches_the_templates_rule_pattern() -> None:
    # Given the event `send --event-bus` builds with its defaults, from a producer in the
    # stack's own account (the rule matches `account` too)
    pattern = moderation_event_pattern()
    (account,) = pattern["account"]
    event = routing.sample_event(
        source=routing.DEFAULT_EVENT_SOURCE,
        detail_type=routing.DEFAULT_DETAIL_TYPE,
        detail={"streamIds": ["s"], "sequence": 1},
        rule_arn=f"arn:aws:events:eu-west-1:{account}:rule/x",
    )

    # Then the template's rule (as resolved for the default parameters) matches it
    assert routing.matches(pattern, event)
    assert (event["account"], event["region"]) == (account, "eu-west-1")
    # ... and an event from another account does not
    stranger = {**event, "account": "111122223333"}
    assert not routing.matches(pattern, stranger)


def _bus_with_rule(stack: Stack, pattern: dict[str, Any]) -> str:
    """A new bus with one rule, routing what `pattern` matches to the resume queue."""
    events = client("events")
    bus = f"moderation-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    events.put_rule(Name="rule", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="rule", EventBusName=bus, Targets=[{"Id": "q", "Arn": stack.queue_arn}])
    return bus


@pytest.fixture
def default_bus_rules() -> Iterator[list[str]]:
    """Rules put on the default bus (shared by every test on the moto server), deleted after."""
    names: list[str] = []
    yield names
    events = client("events")
    for name in names:
        if events.list_targets_by_rule(Rule=name)["Targets"]:
            events.remove_targets(Rule=name, Ids=["q"])
        events.delete_rule(Name=name)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The buses PutEvents was called for (the call still goes through)."""
    calls: list[str] = []
    real = publish.put_event

    def spy(events: Any, **kwargs: Any) -> str:
        calls.append(kwargs["event_bus"])
        return real(events, **kwargs)

    monkeypatch.setattr(publish, "put_event", spy)
    return calls


def test_an_event_no_rule_matches_is_not_sent_and_exits_1(
    stack: Stack, capsys: pytest.CaptureFixture[str], published: list[str]
) -> None:
    # Given a bus whose only rule wants another source (the CLI's old default would not match)
    bus = _bus_with_rule(stack, {"source": ["moderation.decisions"], "detail-type": ["StreamBanLifted"]})

    # When a request is sent there with the defaults
    exit_code = main(["send", "--event-bus", bus, "--stream-id", "s1"])

    # Then nothing is published, exit 1, one line that names the bus, the source and the way out
    assert exit_code == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"no enabled rule on bus {bus}, source {routing.DEFAULT_EVENT_SOURCE}" in err
    assert "--force" in err
    assert published == []
    assert drain(stack.queue_url) == []


def test_force_publishes_an_unrouted_event_with_a_warning(
    stack: Stack, capsys: pytest.CaptureFixture[str], published: list[str]
) -> None:
    # Given a bus whose rule does not match the chosen source
    bus = _bus_with_rule(stack, {"source": ["elsewhere"]})

    # When it is sent with --force
    exit_code = main(
        ["send", "--event-bus", bus, "--stream-id", "s1", "--source", "mine", "--force", "--json"]
    )

    # Then it is published (and dropped by EventBridge), with a warning on stderr
    assert exit_code == 0
    captured = capsys.readouterr()
    assert "warning: no enabled rule" in captured.err
    assert json.loads(captured.out)["matchingRules"] == []
    assert published == [bus]
    assert drain(stack.queue_url) == []


def test_the_default_bus_with_the_templates_rule_delivers(
    stack: Stack, capsys: pytest.CaptureFixture[str], default_bus_rules: list[str]
) -> None:
    # Given the default bus with the template's rule, and a disabled one beside it (no target:
    # moto would deliver through it)
    events = client("events")
    enabled, disabled = f"template-{uuid.uuid4().hex[:8]}", f"disabled-{uuid.uuid4().hex[:8]}"
    pattern = json.dumps(moderation_event_pattern())
    events.put_rule(Name=disabled, EventPattern=pattern, State="DISABLED")
    events.put_rule(Name=enabled, EventPattern=pattern)
    events.put_targets(Rule=enabled, Targets=[{"Id": "q", "Arn": stack.queue_arn}])
    default_bus_rules.extend([enabled, disabled])

    # When the documented command is run: `send --event-bus default --stream-id x`
    exit_code = main(["send", "--event-bus", "default", "--stream-id", "x", "--json"])

    # Then it reaches the resume queue through the enabled rule only
    assert exit_code == 0
    assert json.loads(capsys.readouterr().out)["matchingRules"] == [enabled]
    (message,) = drain(stack.queue_url)
    assert json.loads(message["body"])["detail"]["streamIds"] == ["x"]


class FakeEvents:
    """EventBridge with TestEventPattern, or with ListRules refused."""

    def __init__(self, result: bool, list_error: Exception | None = None) -> None:
        self.result = result
        self.list_error = list_error
        self.tested: list[dict[str, Any]] = []
        self.put: list[dict[str, Any]] = []

    def list_rules(self, EventBusName: str, **_: Any) -> dict[str, Any]:
        if self.list_error is not None:
            raise self.list_error
        return {
            "Rules": [
                {
                    "Name": "r",
                    "Arn": "arn:aws:events:us-east-1:111122223333:rule/r",
                    "EventPattern": json.dumps({"source": [{"wildcard": "moderation.*"}]}),
                    "State": "ENABLED",
                }
            ]
        }

    def test_event_pattern(self, EventPattern: str, Event: str) -> dict[str, Any]:
        self.tested.append(json.loads(Event))
        return {"Result": self.result}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.put.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]}


def _with_events(monkeypatch: pytest.MonkeyPatch, events: FakeEvents) -> None:
    class FakeClients:
        def get(self, service: str, *, attempts: int = 3) -> FakeEvents:
            return events

    monkeypatch.setattr(cli, "Clients", FakeClients)


@pytest.mark.parametrize(("answer", "exit_code"), [(True, 0), (False, 1)])
def test_the_services_test_event_pattern_decides_where_it_exists(
    monkeypatch: pytest.MonkeyPatch, answer: bool, exit_code: int
) -> None:
    # Given an EventBridge that answers TestEventPattern (an operator the local matcher lacks)
    events = FakeEvents(answer)
    _with_events(monkeypatch, events)

    # When a request is sent
    assert main(["send", "--event-bus", "b", "--stream-id", "s1"]) == exit_code

    # Then the service's answer decides, for the event as it would be built
    assert events.tested[0]["source"] == routing.DEFAULT_EVENT_SOURCE
    assert events.tested[0]["account"] == "111122223333"
    assert len(events.put) == (1 if answer else 0)


@pytest.mark.parametrize(("force", "exit_code", "sent"), [(False, 1, 0), (True, 0, 1)])
def test_rules_that_cannot_be_read_stop_the_send_unless_forced(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    force: bool,
    exit_code: int,
    sent: int,
) -> None:
    # Given a producer allowed PutEvents but not ListRules
    events = FakeEvents(True, client_error("AccessDeniedException", 400, operation="ListRules"))
    _with_events(monkeypatch, events)

    # When a request is sent
    argv = ["send", "--event-bus", "b", "--stream-id", "s1", *(["--force"] if force else [])]

    # Then without --force nothing is sent; with it, it is, with a warning naming the error
    assert main(argv) == exit_code
    assert "AccessDeniedException" in capsys.readouterr().err
    assert len(events.put) == sent


def test_force_belongs_to_event_bus(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--queue-url", stack.queue_url, "--stream-id", "s1", "--force"]) == 2
    assert "apply only with --event-bus" in capsys.readouterr().err


EVENT = {
    "source": "moderation.appeals",
    "detail-type": "StreamBanLifted",
    "detail": {"streamIds": ["a", "b"], "reason": "appeal granted", "sequence": 5},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["moderation.appeals", "moderation.rules"]}, True),
        ({"source": ["moderation.decisions"]}, False),
        ({"source": ["moderation.appeals"], "detail-type": ["Other"]}, False),
        ({"source": [{"prefix": "moderation."}]}, True),
        ({"source": [{"suffix": ".rules"}]}, False),
        ({"detail-type": [{"equals-ignore-case": "streambanlifted"}]}, True),
        ({"source": [{"anything-but": ["moderation.appeals"]}]}, False),
        ({"source": [{"anything-but": "x"}]}, True),
        ({"detail": {"streamIds": ["b"]}}, True),  # an array matches when any element does
        ({"detail": {"reason": [{"exists": True}]}}, True),
        ({"detail": {"requestId": [{"exists": True}]}}, False),
        ({"detail": {"requestId": [{"exists": False}]}}, True),
        ({"detail": {"sequence": ["5"]}}, False),  # a string never matches a number
        ({"$or": [{"source": ["x"]}, {"detail-type": ["StreamBanLifted"]}]}, True),
        ({"$or": [{"source": ["x"]}, {"detail-type": ["y"]}]}, False),
        ({"source": [{"wildcard": "moderation.*"}]}, True),  # unknown here: never a false warning
    ],
)
def test_the_local_matcher_follows_eventbridges_rules(pattern: dict[str, Any], expected: bool) -> None:
    assert routing.matches(pattern, EVENT) is expected
