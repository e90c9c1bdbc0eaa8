"""Fleet, one busy environment: the throughput row's event under the template's fleet shape with
the rate ledger on, against the pacer alone at the fleet's rate and the static share (no ledger)."""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.common import (
    BENCH,
    CEILING_IDS_PER_SECOND,
    FUNCTION_DIR,
    ZEGO_RATE_LIMIT,
    Benchmark,
    Context,
    Row,
    median,
    warm_then_4000_ids,
)
from bench.fleet import (
    FLEET_IDS,
    JITTER_MS,
    ZEGO_LATENCY_SECONDS,
    check_budget,
    ledger_environment,
    rate_ledger,
    requests_per_call,
)
from bench.services import EmulatorProcess
from devkit.template import FleetShape, default_fleet_shape


def fleet_one(context: Context) -> Row:
    shape = default_fleet_shape()
    check_budget(shape)
    row = Row(
        "fleet: one busy environment",
        f"4,000 ids, 1 event of 4x1,000 (one Sequence); ZEGO 150 ms, {ZEGO_RATE_LIMIT} calls/s, "
        f"jitter {JITTER_MS} ms (J = {JITTER_MS}); the template's shape "
        f"({shape.max_concurrent_instances} instances x {shape.per_instance_calls_per_second}/s, "
        f"fleet {shape.fleet_calls_per_second}/s), ledger on",
        goal="≥ 0.90, zero 30002; ≤ 0.25 DynamoDB requests per call",
    )
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.set_latency(ZEGO_LATENCY_SECONDS)
    emulator.set_jitter(JITTER_MS / 1000, seed=1)
    alone = dataclasses.replace(shape, per_instance_calls_per_second=shape.fleet_calls_per_second)
    variants: dict[str, list[dict[str, Any]]] = {"ledger": [], "aloneAtFleetRate": [], "staticShare": []}
    try:
        for number in range(context.long_runs):
            # The ledger, and the pacer alone at the same rate: the difference is the ledger's
            # cost per call. Interleaved, so both meet the same state of the machine.
            variants["ledger"].append(
                _one_run(context, emulator, shape, rate_ledger(context.services), "one")
            )
            variants["aloneAtFleetRate"].append(_one_run(context, emulator, alone, None, "alone"))
            if number == 0:  # what the fleet did before the ledger: ~21 s; once is enough
                variants["staticShare"].append(_one_run(context, emulator, shape, None, "static"))
    finally:
        emulator.set_jitter(0.0)
        emulator.set_latency(0.0)
    ledger, alone_runs, static = variants["ledger"], variants["aloneAtFleetRate"], variants["staticShare"]
    ids_per_second = median([run["idsPerSecond"] for run in ledger])
    ratio = ids_per_second / CEILING_IDS_PER_SECOND
    per_call = median([run["requestsPerCall"] for run in ledger])
    rate_limited = sum(run["rateLimited30002"] for variant in variants.values() for run in variant)
    complete = all(
        run["resumedStreamIds"] == FLEET_IDS and run["batchItemFailures"] == 0
        for variant in variants.values()
        for run in variant
    )
    added_ms = median(
        [
            (mine["seconds"] / mine["calls"] - theirs["seconds"] / theirs["calls"]) * 1000
            for mine, theirs in zip(ledger, alone_runs, strict=True)
        ]
    )
    request_ms = median([run["ledgerRequests"].get("medianMs", float("nan")) for run in ledger])
    request_per_call_ms = median([run["ledgerRequests"].get("totalMs", 0.0) / run["calls"] for run in ledger])
    alone_ratio = median([run["idsPerSecond"] for run in alone_runs]) / CEILING_IDS_PER_SECOND
    static_ratio = median([run["idsPerSecond"] for run in static]) / CEILING_IDS_PER_SECOND
    row.measured = (
        f"{ids_per_second:.0f} ids/s (median of {len(ledger)}; "
        f"{sum(run['rateLimited30002'] for run in ledger)} x 30002, "
        f"max {max(run['maxCallsInAnyWindow'] for run in ledger)} calls in any 1 s); "
        f"{per_call:.3f} DynamoDB requests/call; ledger adds {added_ms:+.1f} ms/call "
        f"(requests {request_ms:.1f} ms each, {request_per_call_ms:.2f} ms/call)"
    )
    row.baseline = (
        f"{CEILING_IDS_PER_SECOND} ids/s; pacing alone at {shape.fleet_calls_per_second}/s: "
        f"{alone_ratio:.3f}; the static share ({shape.per_instance_calls_per_second}/s, no ledger): "
        f"{static_ratio:.3f}"
    )
    row.ratio = f"{ratio:.3f}"
    row.met = ratio >= 0.90 and rate_limited == 0 and complete and per_call <= 0.25
    row.figures = {
        "shape": shape.__dict__,
        "variants": variants,
        "medianIdsPerSecond": ids_per_second,
        "ratio": ratio,
        "aloneAtFleetRateRatio": alone_ratio,
        "staticShareRatio": static_ratio,
        "requestsPerCall": per_call,
        "ledgerAddedMsPerCall": added_ms,
        "ledgerRequestMedianMs": request_ms,
        "ledgerRequestMsPerCall": request_per_call_ms,
        "rateLimited30002": rate_limited,
        "complete": complete,
    }
    return row


def _one_run(
    context: Context, emulator: EmulatorProcess, shape: FleetShape, table: str | None, label: str
) -> dict[str, Any]:
    """A warm-up of one id, then one event of 4 x 1,000 ids (one Sequence), in a fresh driver
    process running the handler through bench/ledger_probe.py."""
    emulator.reset()
    spec = warm_then_4000_ids(context.prefix, label, emulator, "ledger_probe", (FUNCTION_DIR, BENCH))
    env = context.services.function_environment(emulator, **ledger_environment(shape, table, JITTER_MS))
    result = context.driver(spec, env).result
    event = result["events"][0]
    zego = event["emulator"]
    report = result.get("report") or {}
    budget = report.get("budget") or {}
    return {
        "seconds": event["wall"],
        "idsPerSecond": FLEET_IDS / event["wall"],
        "calls": zego["calls"],
        "rateLimited30002": zego["rateLimited"],
        "maxCallsInAnyWindow": zego["maxCallsInAnyWindow"],
        "resumedStreamIds": zego["resumedStreamIds"],
        "batchItemFailures": event.get("batchItemFailures"),
        "budget": budget,  # since the process started: the warm-up's call included
        "requestsPerCall": requests_per_call(budget),
        "ledgerRequests": report.get("ledgerRequests") or {},
    }


BENCHMARK = Benchmark("fleet_one", fleet_one)
