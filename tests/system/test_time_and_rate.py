"""Two promises that hold under pressure: an invocation short of time stops starting calls and
hands back what it did not finish; and instances side by side, each at the template's
per-instance budget, never make ZEGO answer 30002."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

import app
from zego_resume.config import Settings
from zego_resume.dispatch import Runtime, handle_event
from zegosim.aws import drain
from zegosim.lambda_runtime import SqsPoller

from .conftest import Local, own_emulator, send_bodies, set_visibility_timeout

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

TEMPLATE = Path(__file__).parents[2] / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """Reads template.yaml, keeping the value under each CloudFormation tag (!Ref, !If, ...)."""


_TemplateLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
        if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)
    ),
)


def template_per_instance_budget() -> tuple[int, int]:
    """(instances, calls per second per instance) for the template's default parameters."""
    template: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_TemplateLoader)  # noqa: S506
    parameters = template["Parameters"]
    total = str(parameters["ZegoCallsPerSecond"]["Default"])
    instances = str(parameters["MaxConcurrentInstances"]["Default"])
    return int(instances), int(template["Mappings"]["CallsPerInstance"][total][instances])


def test_an_invocation_short_of_time_hands_back_what_it_could_not_do(local: Local) -> None:
    # Given 10 decisions needing 50 calls (2.5 s of ZEGO's budget), and a Lambda with 3.5 s left
    bodies = [{"streamIds": [f"t{m}-{n}" for n in range(100)], "sequence": m} for m in range(10)]
    set_visibility_timeout(local, 1)
    send_bodies(local, bodies)
    poller = SqsPoller(
        app.lambda_handler,
        local.stack.queue_url,
        local.stack.queue_arn,
        function_timeout=3.5,
        environment=local.environment,
    )

    # When the first invocation runs
    poller.poll_once(wait_seconds=1)

    # Then it stopped starting calls before its deadline and handed back the unfinished decisions
    first_calls = len(local.zego.calls())
    assert 0 < first_calls < 50
    assert poller.stats.invocations == 1
    assert 0 < poller.stats.reported_failed < 10
    assert local.dead_letters() == []
    # ... and the decisions handed back are finished by invocations with time enough: nothing lost
    SqsPoller(
        app.lambda_handler,
        local.stack.queue_url,
        local.stack.queue_arn,
        function_timeout=60,
        environment=local.environment,
    ).run_until_empty(idle_polls=2, max_seconds=60)
    expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
    assert expected <= local.zego.resumed_stream_ids()
    assert local.zego.stale() == []
    assert drain(local.stack.queue_url, local.environment) == []


def test_instances_side_by_side_at_the_template_budget_never_hit_30002(
    local: Local, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the template's default: N instances, each pacing at floor(20 / N) calls per second
    instances, per_instance = template_per_instance_budget()
    assert instances >= 2
    assert instances * per_instance <= 20
    bodies = [{"streamIds": [f"r{m}-{n}" for n in range(100)], "sequence": m} for m in range(40)]
    send_bodies(local, bodies)

    # ... a ZEGO enforcing its real 20 calls per sliding second
    with own_emulator(local, monkeypatch, calls_per_second=20) as zego:
        monkeypatch.setenv("ZEGO_MAX_CALLS_PER_SECOND", str(per_instance))

        # When that many pollers, each its own execution environment, drain the queue together
        def instance() -> None:
            runtime = Runtime.from_settings(Settings.from_environ(os.environ))
            SqsPoller(
                lambda event, context: handle_event(event, context, runtime),
                local.stack.queue_url,
                local.stack.queue_arn,
                environment=local.environment,
            ).run_until_empty(idle_polls=2, max_seconds=120)

        threads = [threading.Thread(target=instance) for _ in range(instances)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        # Then ZEGO never answered 30002 and every id was resumed
        assert len(zego.calls()) >= 200
        assert zego.rate_limited_count() == 0
        assert zego.max_calls_in_any_window() <= 20
        expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
        assert expected <= zego.resumed_stream_ids()
