"""Memory: the measured process's own peak RSS over one invocation of 10,000 ids."""

from __future__ import annotations

from bench import workloads
from bench.common import FUNCTION_DIR, MB, Benchmark, Context, Row, driver_spec, median, now_ms


def memory(context: Context) -> Row:
    row = Row(
        "memory",
        "1 invocation, 10,000 ids (10 x 1,000, distinct Sequences), 100 calls/s",
        baseline="—",
        goal="peak RSS ≤ 100 MB",
    )
    emulator = context.services.emulator(100)
    emulator.set_latency(0.0)
    runs = []
    for _ in range(context.runs):
        emulator.reset()
        requests = workloads.full_requests(
            context.prefix("mem"), 10, sequence=now_ms(), distinct_sequences=True
        )
        spec = driver_spec(
            "app",
            [FUNCTION_DIR],
            [workloads.sqs_event(requests, sent_timestamp=now_ms())],
            emulator=emulator,
        )
        child = context.ours(spec, emulator, 100)
        event = child.result["events"][0]
        runs.append(
            {
                "maxRssKiB": child.result["maxRssKiB"],
                "seconds": event["wall"],
                "calls": event["emulator"]["calls"],
                "resumedStreamIds": event["emulator"]["resumedStreamIds"],
                "batchItemFailures": event["batchItemFailures"],
            }
        )
    import_only = [
        context.ours(driver_spec("app", [FUNCTION_DIR], [], import_only=True), emulator, 100).result[
            "maxRssKiB"
        ]
        for _ in range(3)
    ]
    peak_kib = median([run["maxRssKiB"] for run in runs])
    import_kib = median(import_only)
    complete = all(run["resumedStreamIds"] == 10_000 and run["batchItemFailures"] == 0 for run in runs)
    row.measured = (
        f"{peak_kib * 1024 / MB:.1f} MB ({peak_kib / 1024:.1f} MiB; median of {len(runs)}; "
        f"import alone {import_kib * 1024 / MB:.1f} MB)"
    )
    row.ratio = f"{peak_kib * 1024 / (100 * MB):.2f} of the goal"
    row.met = peak_kib * 1024 <= 100 * MB and complete
    row.figures = {
        "runs": runs,
        "importOnlyMaxRssKiB": import_only,
        "medianPeakKiB": peak_kib,
        "complete": complete,
    }
    return row


BENCHMARK = Benchmark("memory", memory)
