"""Fleet, four environments: four processes of the function drain one queue through the rate
ledger; the throughput is ZEGO's own record, from the first call's arrival to the last's."""

from __future__ import annotations

import time
from typing import Any

from bench import workloads
from bench.common import (
    APP_ID,
    CEILING_IDS_PER_SECOND,
    ZEGO_RATE_LIMIT,
    BenchError,
    Benchmark,
    Context,
    Row,
    median,
    now_ms,
)
from bench.fleet import (
    ENVIRONMENT_MAX_SECONDS,
    FLEET_IDS,
    JITTER_MS,
    ZEGO_LATENCY_SECONDS,
    Environments,
    calls_per_environment,
    check_budget,
    ledger_environment,
    new_stack,
    rate_ledger,
    send_bodies,
)
from devkit.template import FleetShape, default_fleet_shape
from zegosim.zego import ZegoEmulator

FOUR = 4
FOUR_MESSAGES = 40  # x 100 ids: each environment's first receive (10 messages) is a quarter


def fleet_four(context: Context) -> Row:
    shape = default_fleet_shape(MaxConcurrentInstances=str(FOUR))
    check_budget(shape)
    ids_per_message = FLEET_IDS // FOUR_MESSAGES
    row = Row(
        "fleet: four environments",
        f"4,000 ids as {FOUR_MESSAGES} messages x {ids_per_message} (one Sequence) drained by {FOUR} "
        f"environments (processes) through the ledger; ZEGO 150 ms, {ZEGO_RATE_LIMIT} calls/s, "
        f"jitter {JITTER_MS} ms (J = {JITTER_MS}); the template's shape for {FOUR} instances "
        f"({shape.per_instance_calls_per_second}/s each alone)",
        goal="≥ 0.85, zero 30002",
    )
    runs = [_four_run(context, shape, number) for number in range(context.long_runs)]
    ids_per_second = median([run["idsPerSecond"] for run in runs])
    ratio = ids_per_second / CEILING_IDS_PER_SECOND
    rate_limited = sum(run["rateLimited30002"] for run in runs)
    complete = all(run["everyIdResumed"] and run["allExitedCleanly"] for run in runs)
    per_call = median([run["requestsPerCall"] for run in runs])
    request_ms = median([run["ledgerRequestMedianMs"] for run in runs])
    request_per_call_ms = median([run["ledgerRequestMsPerCall"] for run in runs])
    row.measured = (
        f"{ids_per_second:.0f} ids/s first call to last (median of {len(runs)}; {rate_limited} x 30002, "
        f"max {max(run['maxCallsInAnyWindow'] for run in runs)} calls in any 1 s); "
        f"{per_call:.3f} DynamoDB requests/call; requests {request_ms:.1f} ms each, "
        f"{request_per_call_ms:.2f} ms/call; calls per environment "
        f"{'/'.join(str(n) for n in runs[len(runs) // 2]['callsPerEnvironment'])}"
    )
    row.baseline = f"{CEILING_IDS_PER_SECOND} ids/s"
    row.ratio = f"{ratio:.3f}"
    row.met = ratio >= 0.85 and rate_limited == 0 and complete
    row.figures = {
        "shape": shape.__dict__,
        "runs": runs,
        "medianIdsPerSecond": ids_per_second,
        "ratio": ratio,
        "requestsPerCall": per_call,
        "ledgerRequestMedianMs": request_ms,
        "ledgerRequestMsPerCall": request_per_call_ms,
        "rateLimited30002": rate_limited,
        "complete": complete,
    }
    return row


def _four_run(context: Context, shape: FleetShape, number: int) -> dict[str, Any]:
    services = context.services
    aws = services.moto.environment()
    stack = new_stack(services, "four", visibility_timeout=90)
    table = rate_ledger(services)
    prefix = context.prefix("four")
    sequence = now_ms()
    ids_per_message = FLEET_IDS // FOUR_MESSAGES
    bodies: list[dict[str, Any]] = [
        {
            "streamIds": list(workloads.stream_ids(prefix, ids_per_message, start=m * ids_per_message)),
            "sequence": sequence,
        }
        for m in range(FOUR_MESSAGES)
    ]
    send_bodies(stack, aws, bodies)
    with ZegoEmulator(
        APP_ID,
        services.server_secret,
        rate_limit=ZEGO_RATE_LIMIT,
        latency=ZEGO_LATENCY_SECONDS,
        network_jitter=JITTER_MS / 1000,
        jitter_seed=number + 1,
    ) as zego:
        env = services.function_environment(zego, stack=stack, **ledger_environment(shape, table, JITTER_MS))
        fleet = Environments(
            stack,
            FOUR,
            env,
            context.workdir / f"four-{number}",
            max_seconds=ENVIRONMENT_MAX_SECONDS,
        )
        try:
            stats = fleet.wait()
        finally:
            fleet.stop()
        took = time.time() - fleet.started
        calls = zego.calls()
        resumed = zego.resumed_stream_ids()
        rate_limited = zego.rate_limited_count()
        max_window = zego.max_calls_in_any_window()
    if len(calls) < 2:
        raise BenchError(f"four environments made {len(calls)} calls")
    span = calls[-1].arrival - calls[0].arrival
    expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
    taken = sum((s["budget"] or {}).get("taken", 0) for s in stats)
    ledger_requests = sum((s["budget"] or {}).get("ledger_requests", 0) for s in stats)
    timings = [s.get("ledgerRequests") or {} for s in stats]
    request_count = sum(t.get("requests", 0) for t in timings)
    request_total_ms = sum(t.get("totalMs", 0.0) for t in timings)
    return {
        "seconds": took,
        "firstToLastCallSeconds": span,
        # calls - 1 intervals between the first call and the last: the last call's ids count
        # for its share of the span only
        "idsPerSecond": FLEET_IDS * (len(calls) - 1) / len(calls) / span,
        "calls": len(calls),
        "rateLimited30002": rate_limited,
        "maxCallsInAnyWindow": max_window,
        "everyIdResumed": expected <= resumed,
        "allExitedCleanly": all(s["returncode"] == 0 for s in stats),
        "callsPerEnvironment": calls_per_environment(stats),
        "received": [s["received"] for s in stats],
        "requestsPerCall": ledger_requests / taken if taken else float("nan"),
        "ledgerRequests": ledger_requests,
        "ledgerRequestMedianMs": median([t["medianMs"] for t in timings if t.get("requests")]),
        "ledgerRequestMsPerCall": request_total_ms / taken if taken else float("nan"),
        "timedRequests": request_count,
        "budgets": [s["budget"] for s in stats],
    }


BENCHMARK = Benchmark("fleet_four", fleet_four)
