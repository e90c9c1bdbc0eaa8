"""Throughput at the ceiling: 4,000 ids through one environment against ZEGO's 20 calls/s, with
the loopback's own arrival jitter told to the pacer."""

from __future__ import annotations

from bench.common import (
    CEILING_IDS_PER_SECOND,
    ZEGO_RATE_LIMIT,
    Benchmark,
    Context,
    Row,
    median,
    warm_then_4000_ids,
)

# The loopback's own arrival jitter: what this row tells the pacer (ZEGO_ARRIVAL_JITTER_MS).
LOOPBACK_JITTER_MS = 10


def throughput(context: Context) -> Row:
    row = Row(
        "throughput at the ceiling",
        "4,000 ids, 1 event of 4x1,000 (one Sequence); ZEGO 150 ms, 20 calls/s; no network "
        f"jitter, J = {LOOPBACK_JITTER_MS} ms",
        goal="≥ 0.95, zero 30002",
    )
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.set_latency(0.15)
    emulator.set_jitter(0.0)
    jitter = {"ZEGO_ARRIVAL_JITTER_MS": str(LOOPBACK_JITTER_MS)}
    runs = []
    try:
        for _ in range(context.long_runs):
            emulator.reset()
            spec = warm_then_4000_ids(context.prefix, "tput", emulator)
            event = context.ours(spec, emulator, ZEGO_RATE_LIMIT, **jitter).result["events"][0]
            zego = event["emulator"]
            runs.append(
                {
                    "seconds": event["wall"],
                    "idsPerSecond": 4000 / event["wall"],
                    "calls": zego["calls"],
                    "rateLimited30002": zego["rateLimited"],
                    "maxCallsInAnyWindow": zego["maxCallsInAnyWindow"],
                    "resumedStreamIds": zego["resumedStreamIds"],
                    "batchItemFailures": event.get("batchItemFailures"),
                    "cpuSeconds": event["cpu"],
                }
            )
    finally:
        emulator.set_latency(0.0)
    ids_per_second = median([run["idsPerSecond"] for run in runs])
    ratio = ids_per_second / CEILING_IDS_PER_SECOND
    rate_limited = sum(run["rateLimited30002"] for run in runs)
    complete = all(run["resumedStreamIds"] == 4000 and run["batchItemFailures"] == 0 for run in runs)
    row.measured = (
        f"{ids_per_second:.0f} ids/s (median of {len(runs)}; {rate_limited} x 30002, "
        f"max {max(run['maxCallsInAnyWindow'] for run in runs)} calls in any 1 s)"
    )
    row.baseline = f"{CEILING_IDS_PER_SECOND} ids/s"
    row.ratio = f"{ratio:.3f}"
    row.met = ratio >= 0.95 and rate_limited == 0 and complete
    row.figures = {"runs": runs, "medianIdsPerSecond": ids_per_second, "ratio": ratio}
    return row


BENCHMARK = Benchmark("throughput", throughput)
