"""Outage: ZEGO's gateway down (HTTP 503 to everything) while two environments poll, then a
brownout (a seeded half of the answers 503) until the queue drains; nothing may be lost or
dead-lettered."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench.common import APP_ID, ZEGO_RATE_LIMIT, Benchmark, Context, Row, now_ms
from bench.fleet import (
    ENVIRONMENT_MAX_SECONDS,
    Environments,
    calls_per_environment,
    check_budget,
    ledger_environment,
    new_stack,
    rate_ledger,
    send_bodies,
)
from devkit.template import FleetShape, default_fleet_shape
from zegosim.aws import Stack, client, dead_lettered_stream_ids, drain
from zegosim.zego import Fault, ZegoEmulator

OUTAGE_SECONDS = 45.0
OUTAGE_DECISIONS = 100
OUTAGE_ENVIRONMENTS = 2
OUTAGE_VISIBILITY_SECONDS = 2
OUTAGE_MAX_RECEIVE_COUNT = 1000  # the template leaves giving up to the age rule; moto's default is 5
OUTAGE_PROBE_SECONDS = 1
OUTAGE_REDELIVERY_MAX_DELAY_SECONDS = 4
BROWNOUT_PROBABILITY = 0.5


def outage(context: Context) -> list[Row]:
    shape = default_fleet_shape()
    check_budget(shape)
    return [_outage_row(context, shape), _brownout_row(context, shape)]


def _drill_setup(
    context: Context, shape: FleetShape, label: str
) -> tuple[Stack, dict[str, str], list[dict[str, Any]]]:
    services = context.services
    aws = services.moto.environment()
    stack = new_stack(
        services,
        label,
        max_receive_count=OUTAGE_MAX_RECEIVE_COUNT,
        visibility_timeout=OUTAGE_VISIBILITY_SECONDS,
    )
    prefix = context.prefix(label)
    base = now_ms()
    bodies = [
        {"streamIds": [f"{prefix}-{n}-a", f"{prefix}-{n}-b"], "sequence": base + n}
        for n in range(OUTAGE_DECISIONS)
    ]
    send_bodies(stack, aws, bodies)
    extra = {
        **ledger_environment(shape, rate_ledger(services), shape.arrival_jitter_ms),
        "ZEGO_OUTAGE_PROBE_SECONDS": str(OUTAGE_PROBE_SECONDS),
        "REDELIVERY_MAX_DELAY_SECONDS": str(OUTAGE_REDELIVERY_MAX_DELAY_SECONDS),
    }
    return stack, extra, bodies


def _settle(
    context: Context, stack: Stack, bodies: Sequence[dict[str, Any]], resumed: set[str]
) -> dict[str, Any]:
    aws = context.services.moto.environment()
    letters = drain(stack.dead_letter_queue_url, aws)
    attributes = client("sqs", aws).get_queue_attributes(
        QueueUrl=stack.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
    lettered = set(dead_lettered_stream_ids(letters))
    return {
        "ids": len(expected),
        "resumed": len(expected & resumed),
        "deadLetters": len(letters),
        "deadLetteredIds": len(expected & lettered),
        # neither resumed nor dead-lettered: a decision the fleet dropped
        "lost": len(expected - resumed - lettered),
        "leftOnQueue": {key: int(value) for key, value in attributes.items()},
    }


def _outage_row(context: Context, shape: FleetShape) -> Row:
    row = Row(
        "outage: ZEGO down",
        f"{OUTAGE_DECISIONS} decisions x 2 ids wait while ZEGO answers HTTP 503 to everything for "
        f"{OUTAGE_SECONDS:.0f} s; {OUTAGE_ENVIRONMENTS} environments poll, the ledger on; visibility "
        f"{OUTAGE_VISIBILITY_SECONDS} s, probe {OUTAGE_PROBE_SECONDS} s, redelivery ≤ "
        f"{OUTAGE_REDELIVERY_MAX_DELAY_SECONDS} s",
        baseline="the issue's figures: ~8 calls/env/s, busy ~100%",
        goal="0 lost, 0 dead-lettered; ≤ 1.3 calls/env/s; busy ≤ 25%; all resumed ≤ 12 s after",
    )
    stack, extra, bodies = _drill_setup(context, shape, "outage")
    with ZegoEmulator(APP_ID, context.services.server_secret, rate_limit=ZEGO_RATE_LIMIT) as zego:
        zego.inject_randomly([Fault.http(503)], probability=1.0)
        env = context.services.function_environment(zego, stack=stack, **extra)
        fleet = Environments(
            stack,
            OUTAGE_ENVIRONMENTS,
            env,
            context.workdir / "outage",
            max_seconds=OUTAGE_SECONDS + 60,
        )
        try:
            outage_began = fleet.started
            time.sleep(OUTAGE_SECONDS)
            zego.clear_faults()
            outage_ended, back_at = time.time(), time.monotonic()
            stats = fleet.wait()
        finally:
            zego.clear_faults()
            fleet.stop()
        calls = zego.calls()
        resumed = zego.resumed_stream_ids()
        rate_limited = zego.rate_limited_count()
    settled = _settle(context, stack, bodies, resumed)
    refused = [call for call in calls if call.fault is not None]
    per_env_second = len(refused) / (OUTAGE_ENVIRONMENTS * OUTAGE_SECONDS)
    busy_seconds = sum(
        max(0.0, min(end, outage_ended) - max(start, outage_began)) for s in stats for start, end in s["busy"]
    )
    busy_share = busy_seconds / (OUTAGE_ENVIRONMENTS * OUTAGE_SECONDS)
    expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
    first_applied: dict[str, float] = {}
    for call in calls:
        if call.code == 0 and call.fault is None:
            for stream_id in call.applied_stream_ids:
                first_applied.setdefault(stream_id, call.arrival)
    all_back = expected <= set(first_applied)
    recovery = (max(first_applied[i] for i in expected) - back_at) if all_back else float("inf")
    row.measured = (
        f"lost {settled['lost']}, dead-lettered {settled['deadLetters']}; "
        f"{per_env_second:.2f} calls/env/s to the dead gateway ({len(refused)} in "
        f"{OUTAGE_SECONDS:.0f} s x {OUTAGE_ENVIRONMENTS}); busy {busy_share:.0%} of the outage "
        f"({busy_seconds:.1f} s); all resumed {recovery:.1f} s after "
        f"ZEGO's return; {rate_limited} x 30002"
    )
    row.ratio = f"{per_env_second:.2f} calls/env/s; busy {busy_share:.2f}; {recovery:.1f} s"
    row.met = (
        settled["lost"] == 0
        and settled["deadLetters"] == 0
        and per_env_second <= 1.3
        and busy_share <= 0.25
        and recovery <= 12.0
    )
    row.figures = {
        "shape": shape.__dict__,
        **settled,
        "outageSeconds": OUTAGE_SECONDS,
        "callsToDeadGateway": len(refused),
        "callsPerEnvironmentPerSecond": per_env_second,
        "callsPerEnvironment": calls_per_environment(stats),
        "busySeconds": busy_seconds,
        "busyShare": busy_share,
        "recoverySeconds": recovery,
        "callsAfterReturn": len(calls) - len(refused),
        "rateLimited30002": rate_limited,
        "environments": [{key: s[key] for key in s if key != "busy"} for s in stats],
        "invocations": [len(s["busy"]) for s in stats],
    }
    return row


def _brownout_row(context: Context, shape: FleetShape) -> Row:
    row = Row(
        "outage: brownout",
        f"the same {OUTAGE_DECISIONS} decisions x 2 ids (one call each at best) while "
        f"{BROWNOUT_PROBABILITY:.0%} of ZEGO's answers are HTTP 503, until drained",
        baseline=f"at best {OUTAGE_DECISIONS} calls: 0.5 per id",
        goal="0 lost, 0 dead-lettered; calls per resumed id reported",
    )
    stack, extra, bodies = _drill_setup(context, shape, "brownout")
    with ZegoEmulator(APP_ID, context.services.server_secret, rate_limit=ZEGO_RATE_LIMIT) as zego:
        zego.inject_randomly([Fault.http(503)], probability=BROWNOUT_PROBABILITY, seed=11)
        env = context.services.function_environment(zego, stack=stack, **extra)
        fleet = Environments(
            stack,
            OUTAGE_ENVIRONMENTS,
            env,
            context.workdir / "brownout",
            max_seconds=ENVIRONMENT_MAX_SECONDS,
        )
        try:
            stats = fleet.wait()
        finally:
            zego.clear_faults()
            fleet.stop()
        took = time.time() - fleet.started
        calls = zego.calls()
        resumed = zego.resumed_stream_ids()
        rate_limited = zego.rate_limited_count()
    settled = _settle(context, stack, bodies, resumed)
    refused = sum(1 for call in calls if call.fault is not None)
    per_id = len(calls) / settled["resumed"] if settled["resumed"] else float("inf")
    row.measured = (
        f"lost {settled['lost']}, dead-lettered {settled['deadLetters']}; {len(calls)} calls "
        f"({refused} answered 503) for {settled['resumed']} ids: {per_id:.2f} calls per resumed id; "
        f"drained in {took:.1f} s; {rate_limited} x 30002"
    )
    row.ratio = f"{per_id / 0.5:.2f}x the fewest calls"
    row.met = settled["lost"] == 0 and settled["deadLetters"] == 0
    row.figures = {
        **settled,
        "calls": len(calls),
        "answered503": refused,
        "callsPerResumedId": per_id,
        "callsPerDecision": len(calls) / OUTAGE_DECISIONS,
        "seconds": took,
        "rateLimited30002": rate_limited,
        "environments": [{key: s[key] for key in s if key != "busy"} for s in stats],
        "invocations": [len(s["busy"]) for s in stats],
    }
    return row


BENCHMARK = Benchmark("outage", outage)
