"""Two promises that hold under pressure: an invocation short of time stops starting calls and
hands back what it did not finish; and instances side by side, each at the template's
per-instance budget, never make ZEGO answer 30002."""

from __future__ import annotations

import os
import threading

import pytest

import app
from devkit.template import default_function_environment, load_template
from zego_resume.config import Settings
from zego_resume.dispatch import handle_event
from zego_resume.runtime import Runtime
from zegosim.aws import drain
from zegosim.lambda_runtime import SqsPoller

from .conftest import Local, own_emulator, send_bodies, set_visibility_timeout

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket, pytest.mark.timeout(240)]

# Each drain takes ~15 s here; the pollers give up (saying what is left) well before the test does.
DRAIN_SECONDS = 80


def template_per_instance_budget() -> tuple[int, int]:
    """(instances, calls per second per instance) for the template's default parameters."""
    template = load_template()
    instances = int(template["Parameters"]["MaxConcurrentInstances"]["Default"])
    return instances, int(default_function_environment()["ZEGO_MAX_CALLS_PER_SECOND"])


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

    # Then it stopped starting calls before its deadline and handed back exactly the decisions it
    # had not finished (how many it finished depends on the machine's load, not on the rule)
    first_calls = len(local.zego.calls())
    assert 0 < first_calls < 50
    assert poller.stats.invocations == 1
    resumed = local.zego.resumed_stream_ids()
    unfinished = sum(not set(body["streamIds"]) <= resumed for body in bodies)
    assert unfinished > 0
    assert poller.stats.reported_failed == unfinished
    assert local.dead_letters() == []
    # ... and the decisions handed back are finished by invocations with time enough: nothing lost
    SqsPoller(
        app.lambda_handler,
        local.stack.queue_url,
        local.stack.queue_arn,
        function_timeout=60,
        environment=local.environment,
    ).run_until_empty(idle_polls=2, max_seconds=DRAIN_SECONDS)
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
        failures: list[BaseException] = []

        def instance() -> None:
            runtime = Runtime.from_settings(Settings.from_environ(os.environ))
            try:
                SqsPoller(
                    lambda event, context: handle_event(event, context, runtime),
                    local.stack.queue_url,
                    local.stack.queue_arn,
                    environment=local.environment,
                ).run_until_empty(idle_polls=2, max_seconds=DRAIN_SECONDS)
            except BaseException as error:  # a thread's failure must fail the test
                failures.append(error)

        threads = [threading.Thread(target=instance) for _ in range(instances)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []

        # Then ZEGO never answered 30002 and every id was resumed
        assert len(zego.calls()) >= 200
        assert zego.rate_limited_count() == 0
        assert zego.max_calls_in_any_window() <= 20
        expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
        assert expected <= zego.resumed_stream_ids()
