"""CPU per ZEGO call: the handler against a `requests` loop over URLs signed in advance
(bench/baseline_requests_loop.py), paced alike, in interleaved pairs."""

from __future__ import annotations

from bench import workloads
from bench.common import (
    APP_ID,
    BENCH,
    ZEGO_RATE_LIMIT,
    Benchmark,
    Context,
    Row,
    median,
    now_ms,
    run_child,
    warm_then_4000_ids,
)
from bench.services import PYTHON

BASELINE_LOOP = BENCH / "baseline_requests_loop.py"
PACED_INTERVAL = 1.025 / ZEGO_RATE_LIMIT  # the function's pacer: 20 starts per 1.025 s


def cpu_per_call(context: Context) -> Row:
    row = Row(
        "CPU per ZEGO call",
        "4,000 ids (200 calls), ZEGO with no latency, 20 calls/s",
        goal="≤ 1.3x",
    )
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.set_latency(0.0)
    ours_runs, baseline_runs = [], []
    for _ in range(context.cpu_pairs):
        emulator.reset()
        spec = warm_then_4000_ids(context.prefix, "cpu", emulator)
        event = context.ours(spec, emulator, ZEGO_RATE_LIMIT).result["events"][0]
        calls = event["emulator"]["calls"]
        ours_runs.append(
            {
                "cpuSeconds": event["cpu"],
                "calls": calls,
                "cpuPerCallMs": event["cpu"] / calls * 1000,
                "seconds": event["wall"],
                "rateLimited30002": event["emulator"]["rateLimited"],
            }
        )

        emulator.reset()
        loop_spec = {
            "url": emulator.base_url,
            "app_id": APP_ID,
            "server_secret": context.services.server_secret,
            "calls": 200,
            "ids_per_call": workloads.MAX_IDS_PER_CALL,
            "prefix": context.prefix("loop"),
            "sequence": now_ms(),
            "interval": PACED_INTERVAL,
        }
        env = context.services.function_environment(emulator)
        loop = run_child([PYTHON, str(BASELINE_LOOP)], loop_spec, env, context.workdir).result
        baseline_runs.append(
            {
                "cpuSeconds": loop["cpu"],
                "calls": loop["calls"],
                "cpuPerCallMs": loop["cpu"] / loop["calls"] * 1000,
                "seconds": loop["wall"],
                "codes": loop["codes"],
            }
        )
    ours = median([run["cpuPerCallMs"] for run in ours_runs])
    baseline = median([run["cpuPerCallMs"] for run in baseline_runs])
    # Each pair ran back to back, so it shared the machine's state (other tenants, clock
    # speed): the median of the pairs' ratios is steadier than the ratio of the medians.
    pair_ratios = [
        ours_run["cpuPerCallMs"] / baseline_run["cpuPerCallMs"]
        for ours_run, baseline_run in zip(ours_runs, baseline_runs, strict=True)
    ]
    ratio = median(pair_ratios)
    all_zero = all(set(run["codes"]) == {"0"} for run in baseline_runs)
    row.measured = f"{ours:.3f} ms CPU/call (median of {len(ours_runs)})"
    row.baseline = f"{baseline:.3f} ms CPU/call"
    row.ratio = f"{ratio:.3f}x (median of pair ratios; of medians {ours / baseline:.3f}x)"
    row.met = ratio <= 1.3 and all_zero
    row.figures = {
        "ours": ours_runs,
        "baseline": baseline_runs,
        "baselineAllAnswered0": all_zero,
        "medianOursMs": ours,
        "medianBaselineMs": baseline,
        "pairRatios": pair_ratios,
        "ratio": ratio,
        "ratioOfMedians": ours / baseline,
    }
    return row


BENCHMARK = Benchmark("cpu_per_call", cpu_per_call)
