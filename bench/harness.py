"""`make bench`: every performance goal measured against a baseline from the same run.

    python -m bench.run [--only NAME[,NAME]] [--runs 7] [--long-runs 3] [--cpu-pairs 5]

Starts moto server and the ZEGO emulator in processes of their own, runs each benchmark's
measured code in fresh processes (bench/driver.py for the handler, bench/baseline_*.py for the
baselines), prints a table and writes every raw figure to bench/results/latest.json and a dated
copy. Exits 0 when every benchmark ran, goals met or not ("NOT MET" says which); 1 when one could
not run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import cost, report
from .benchmarks import (
    call_efficiency,
    cold_start,
    cpu_per_call,
    fleet_four,
    fleet_one,
    memory,
    outage,
    package,
    throughput,
)
from .common import APP_ID, Benchmark, Context, Row
from .services import Services

# Every benchmark by the name `--only` selects, in the table's order.
BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        throughput.BENCHMARK,
        fleet_one.BENCHMARK,
        fleet_four.BENCHMARK,
        outage.BENCHMARK,
        call_efficiency.BENCHMARK,
        cpu_per_call.BENCHMARK,
        cold_start.BENCHMARK,
        memory.BENCHMARK,
        package.BENCHMARK,
    )
}
NAMES = tuple(BENCHMARKS)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[], help=f"comma-separated: {', '.join(NAMES)}")
    parser.add_argument(
        "--runs", type=int, default=7, help="runs per process-level figure (>= 7 for the README)"
    )
    parser.add_argument("--long-runs", type=int, default=3, help="runs of the ~10 s throughput benchmark")
    parser.add_argument(
        "--cpu-pairs", type=int, default=5, help="interleaved ours/baseline CPU runs, ~20 s each"
    )
    args = parser.parse_args(argv)
    only = [name for value in args.only for name in value.split(",") if name]
    unknown = set(only) - set(NAMES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}; choose from {', '.join(NAMES)}")
    if min(args.runs, args.long_runs, args.cpu_pairs) < 1:
        parser.error("--runs, --long-runs and --cpu-pairs must be at least 1")
    args.selected = [name for name in NAMES if not only or name in only]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    document: dict[str, Any] = {
        "started": started.isoformat(),
        "machine": report.machine(),
        "settings": {
            "runs": args.runs,
            "longRuns": args.long_runs,
            "cpuPairs": args.cpu_pairs,
            "selected": args.selected,
        },
    }
    rows: dict[str, list[Row]] = {}
    errors: dict[str, str] = {}
    importtimes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="zego-bench-") as tmp:
        workdir = Path(tmp)
        with Services(APP_ID, secrets.token_hex(16), workdir / "services.log") as services:
            services.start()
            context = Context(services, workdir, args.runs, args.long_runs, args.cpu_pairs)
            # package first: the as-built cold start reuses its build. Then the cold start, on
            # services still fresh: run after the fleet and outage benchmarks, with their tables
            # and queues in moto, the ledger-on row alone measured 112 ms over the row without
            # (4 to 35 ms when run first).
            first = ("package", "cold_start")
            for name in sorted(
                args.selected, key=lambda name: (first.index(name) if name in first else 2, NAMES.index(name))
            ):
                print(f"running {name} ...", file=sys.stderr, flush=True)
                began = time.monotonic()
                try:
                    produced = BENCHMARKS[name].run(context)
                except Exception as error:  # reported, and the run exits 1; the others still run
                    traceback.print_exc()
                    errors[name] = "".join(traceback.format_exception_only(error)).strip()
                    rows[name] = [
                        Row(name, "", status="error", measured=f"could not run: {type(error).__name__}")
                    ]
                    continue
                rows[name] = produced if isinstance(produced, list) else [produced]
                print(f"  {name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
            importtimes = context.importtime
            logs = None
            if "throughput" in rows and rows["throughput"][0].status == "ran":
                try:
                    logs = cost.log_volume(context)
                except Exception:  # the cost is then given without logs
                    traceback.print_exc()

    ordered = [row for name in NAMES for row in rows.get(name, [])]
    document["importtime"] = importtimes
    document["finished"] = datetime.now(UTC).isoformat()
    document["loadAverageAtEnd"] = os.getloadavg()
    document["benchmarks"] = {name: [asdict(row) for row in produced] for name, produced in rows.items()}
    document["errors"] = errors
    document["cost"] = cost.cost_of_a_million(rows, logs)
    report.publish(document, ordered)
    return 1 if errors else 0
