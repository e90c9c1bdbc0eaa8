"""Call efficiency: the fewest ZEGO calls a mixed workload needs (bench/workloads.py works it out
from ZEGO's rules alone) against the calls ZEGO received, in one event and in events of ≤ 10."""

from __future__ import annotations

from bench import workloads
from bench.common import FUNCTION_DIR, ZEGO_RATE_LIMIT, Benchmark, Context, Row, driver_spec, now_ms


def call_efficiency(context: Context) -> Row:
    row = Row(
        "call efficiency",
        "64 requests: 60 x 1-5 ids over 4 Sequences (ids repeat), 3 x 150-400, 8 streams under 2 Sequences",
        goal="1.00",
    )
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.reset()
    whole = workloads.mixed_workload(context.prefix("mix1"), base_sequence=now_ms())
    split = workloads.mixed_workload(context.prefix("mix2"), base_sequence=now_ms() + 10_000)
    batches = split.batches()
    events = [workloads.sqs_event(whole.requests, sent_timestamp=now_ms())]
    events += [workloads.sqs_event(batch, sent_timestamp=now_ms()) for batch in batches]
    spec = driver_spec("app", [FUNCTION_DIR], events, emulator=emulator)
    measured = context.ours(spec, emulator, ZEGO_RATE_LIMIT).result["events"]

    one_event = measured[0]
    per_batch = measured[1:]
    variants = {
        "oneEvent": {
            "records": len(whole.requests),
            "distinctIds": workloads.distinct_ids(whole.requests),
            "minimumCalls": workloads.minimum_calls(whole.requests),
            "callsMade": one_event["emulator"]["calls"],
            "resumedStreamIds": one_event["emulator"]["resumedStreamIds"],
            "batchItemFailures": one_event["batchItemFailures"],
            "crossingStreams": whole.crossing_streams,
        },
        "batchesOf10": {
            "records": len(split.requests),
            "events": len(batches),
            "distinctIds": workloads.distinct_ids(split.requests),
            "minimumCalls": workloads.per_batch_minimum(batches),
            "callsMade": sum(event["emulator"]["calls"] for event in per_batch),
            # a stream named in two batches is resumed by both: count it once
            "batchItemFailures": sum(event["batchItemFailures"] for event in per_batch),
            "crossingStreams": split.crossing_streams,
        },
    }
    for variant in variants.values():
        variant["ratio"] = variant["minimumCalls"] / variant["callsMade"]
    ratio = min(variant["ratio"] for variant in variants.values())
    whole_ok = variants["oneEvent"]["resumedStreamIds"] == variants["oneEvent"]["distinctIds"]
    failures = sum(variant["batchItemFailures"] for variant in variants.values())
    row.measured = (
        f"{variants['oneEvent']['callsMade']} calls (1 event); "
        f"{variants['batchesOf10']['callsMade']} calls ({len(batches)} events of ≤ 10)"
    )
    row.baseline = (
        f"minimum {variants['oneEvent']['minimumCalls']}; {variants['batchesOf10']['minimumCalls']}"
    )
    row.ratio = f"{ratio:.2f}"
    row.met = ratio >= 1.0 and whole_ok and failures == 0
    row.figures = {"variants": variants, "ratio": ratio, "everyIdResumed": whole_ok}
    return row


BENCHMARK = Benchmark("call_efficiency", call_efficiency)
