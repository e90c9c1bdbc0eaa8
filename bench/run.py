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
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit import toolchain

from . import cost, importtime, report, workloads
from .common import (
    APP_ID,
    BENCH,
    CEILING_IDS_PER_SECOND,
    DRIVER,
    FUNCTION_DIR,
    ZEGO_RATE_LIMIT,
    BenchError,
    Child,
    Row,
    driver_spec,
    median,
    now_ms,
    one_id_event,
    run_child,
)
from .fleet import Context, FleetBenchmarks
from .services import PYTHON, ROOT, EmulatorProcess, Services

BASELINE_LOOP = BENCH / "baseline_requests_loop.py"
RESULTS = BENCH / "results"
SAM = ROOT / ".venv-tools" / "sam" / "bin" / "sam"
PACED_INTERVAL = 1.025 / ZEGO_RATE_LIMIT  # the function's pacer: 20 starts per 1.025 s
SAM_BUILD_TIMEOUT_SECONDS = 600.0
MB = 1_000_000  # goals are in decimal megabytes: the stricter reading
MIB = 1024 * 1024
NAMES = (
    "throughput",
    "fleet_one",
    "fleet_four",
    "outage",
    "call_efficiency",
    "cpu_per_call",
    "cold_start",
    "memory",
    "package",
)
# The loopback's own arrival jitter: what the throughput row tells the pacer (ZEGO_ARRIVAL_JITTER_MS).
LOOPBACK_JITTER_MS = 10


class Bench:
    def __init__(
        self, services: Services, workdir: Path, runs: int, long_runs: int, cpu_pairs: int = 5
    ) -> None:
        self.services = services
        self.workdir = workdir
        self.runs = runs
        self.long_runs = long_runs
        self.cpu_pairs = cpu_pairs
        self.build: dict[str, Any] | None = None  # set by the package benchmark
        self.importtime: dict[str, Any] = {}
        self._serial = 0

    def prefix(self, label: str) -> str:
        """Stream ids never seen before: ZEGO's Sequence rule never meets an earlier run."""
        self._serial += 1
        return f"bench-{label}-{os.getpid()}-{self._serial}"

    def warm_then_4000_ids(self, label: str, emulator: EmulatorProcess) -> dict[str, Any]:
        """A driver run: a one-id warm-up, then one event of 4 x 1,000 ids sharing a Sequence."""
        requests = workloads.full_requests(self.prefix(label), 4, sequence=now_ms(), distinct_sequences=False)
        return driver_spec(
            "app",
            [FUNCTION_DIR],
            [workloads.sqs_event(requests, sent_timestamp=now_ms())],
            warmup=[one_id_event(self.prefix("warm"))],
            emulator=emulator,
        )

    def ours(
        self,
        spec: dict[str, Any],
        emulator: EmulatorProcess,
        calls_per_second: int,
        python_flags: Sequence[str] = (),
        **extra: str,
    ) -> Child:
        """Run the driver (for our handler or the idiomatic baseline) with the function's env."""
        env = self.services.function_environment(
            emulator, ZEGO_MAX_CALLS_PER_SECOND=str(calls_per_second), **extra
        )
        return run_child([PYTHON, *python_flags, str(DRIVER)], spec, env, self.workdir)

    # ----- 1. throughput at the ceiling ----------------------------------------------------------

    def throughput(self) -> Row:
        row = Row(
            "throughput at the ceiling",
            "4,000 ids, 1 event of 4x1,000 (one Sequence); ZEGO 150 ms, 20 calls/s; no network "
            f"jitter, J = {LOOPBACK_JITTER_MS} ms",
            goal="≥ 0.95, zero 30002",
        )
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.set_latency(0.15)
        emulator.set_jitter(0.0)
        jitter = {"ZEGO_ARRIVAL_JITTER_MS": str(LOOPBACK_JITTER_MS)}
        runs = []
        try:
            for _ in range(self.long_runs):
                emulator.reset()
                spec = self.warm_then_4000_ids("tput", emulator)
                event = self.ours(spec, emulator, ZEGO_RATE_LIMIT, **jitter).result["events"][0]
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

    # ----- 2. call efficiency --------------------------------------------------------------------

    def call_efficiency(self) -> Row:
        row = Row(
            "call efficiency",
            "64 requests: 60 x 1-5 ids over 4 Sequences (ids repeat), 3 x 150-400, "
            "8 streams under 2 Sequences",
            goal="1.00",
        )
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.reset()
        whole = workloads.mixed_workload(self.prefix("mix1"), base_sequence=now_ms())
        split = workloads.mixed_workload(self.prefix("mix2"), base_sequence=now_ms() + 10_000)
        batches = split.batches()
        events = [workloads.sqs_event(whole.requests, sent_timestamp=now_ms())]
        events += [workloads.sqs_event(batch, sent_timestamp=now_ms()) for batch in batches]
        spec = driver_spec("app", [FUNCTION_DIR], events, emulator=emulator)
        measured = self.ours(spec, emulator, ZEGO_RATE_LIMIT).result["events"]

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

    # ----- 3. CPU per ZEGO call ------------------------------------------------------------------

    def cpu_per_call(self) -> Row:
        row = Row(
            "CPU per ZEGO call",
            "4,000 ids (200 calls), ZEGO with no latency, 20 calls/s",
            goal="≤ 1.3x",
        )
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.set_latency(0.0)
        ours_runs, baseline_runs = [], []
        for _ in range(self.cpu_pairs):
            emulator.reset()
            spec = self.warm_then_4000_ids("cpu", emulator)
            event = self.ours(spec, emulator, ZEGO_RATE_LIMIT).result["events"][0]
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
                "server_secret": self.services.server_secret,
                "calls": 200,
                "ids_per_call": workloads.MAX_IDS_PER_CALL,
                "prefix": self.prefix("loop"),
                "sequence": now_ms(),
                "interval": PACED_INTERVAL,
            }
            env = self.services.function_environment(emulator)
            loop = run_child([PYTHON, str(BASELINE_LOOP)], loop_spec, env, self.workdir).result
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

    # ----- 4. cold start -------------------------------------------------------------------------

    def cold_start(self) -> list[Row]:
        """Four targets measured in the same rounds, each round in a different order: ours and the
        idiomatic baseline from .venv (warm .pyc), and both as built (as Lambda runs them)."""
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.set_latency(0.0)
        targets: dict[str, tuple[str, list[Path], list[str]]] = {
            "ours": ("app", [FUNCTION_DIR], []),
            "baseline": ("baseline_idiomatic", [BENCH], []),
        }
        build = self.build or self._build_quietly()
        if build is not None:
            # As Lambda runs it: only the built function (or the baseline), a built layer and
            # boto3 importable, isolated, and no .pyc written (-B): /var/task and /opt are
            # read-only. Each side ships the bytecode its build compiled (unchecked-hash): ours
            # from `sam build`; the baseline's code compiled the same way, on the whole layer
            # (the same lock, built by the same Makefile, not pruned: it imports Powertools'
            # batch and parameters utilities). boto3 keeps its .pyc: the runtime's is precompiled.
            flags = ["-I", "-S", "-B"]
            runtime = self._runtime_boto3()
            targets["oursBuilt"] = (
                "app",
                [Path(build["functionDir"]), Path(build["layerDir"]) / "python", runtime],
                flags,
            )
            targets["baselineBuilt"] = (
                "baseline_idiomatic",
                [self._baseline_as_built(), Path(build["wholeLayerDir"]) / "python", runtime],
                flags,
            )
        runs = self._interleaved_cold_runs(emulator, targets)
        venv = "the project's .venv (.pyc cached)"
        rows = [self._ratio_row("cold start", venv, runs["ours"], runs["baseline"], "baseline", 0.8)]
        self.importtime["ours"] = self._importtime(emulator, *targets["ours"])
        self.importtime["baseline"] = self._importtime(emulator, *targets["baseline"])
        if build is None:
            for name in ("cold start, as built", "bytecode: as built vs .venv"):
                rows.append(
                    Row(name, "`sam build` output", status="skipped", measured="skipped: run make tools")
                )
            return rows
        built = "`sam build` output, read-only (-B), shipped .pyc"
        rows.append(
            self._ratio_row(
                "cold start, as built",
                built,
                runs["oursBuilt"],
                runs["baselineBuilt"],
                "baseline built alike",
                0.6,
            )
        )
        rows.append(
            self._ratio_row(
                "bytecode: as built vs .venv",
                f"{built}, against the same code from .venv (warm .pyc); goal on import + event",
                runs["oursBuilt"],
                runs["ours"],
                "ours from .venv",
                1.15,
                judged_on="importAndFirstEvent",
            )
        )
        self.importtime["oursAsBuilt"] = self._importtime(emulator, *targets["oursBuilt"])
        self.importtime["baselineAsBuilt"] = self._importtime(emulator, *targets["baselineBuilt"])
        return rows

    def _baseline_as_built(self) -> Path:
        """The idiomatic baseline's code alone, with bytecode compiled as our Makefiles compile it."""
        directory = self.workdir / "baseline-as-built"
        if not directory.exists():
            directory.mkdir()
            shutil.copy2(BENCH / "baseline_idiomatic.py", directory)
            subprocess.run(  # noqa: S603 - python3.12's own compileall
                [
                    str(toolchain.python312()),
                    "-m",
                    "compileall",
                    "-q",
                    "--invalidation-mode",
                    "unchecked-hash",
                    "-s",
                    str(directory),
                    "-p",
                    "/var/task",
                    str(directory),
                ],
                check=True,
                timeout=120,
            )
        return directory

    def _runtime_boto3(self) -> Path:
        """boto3 and what it needs, linked from .venv: a stand-in for the runtime's."""
        directory = self.workdir / "lambda-runtime"
        if not directory.exists():
            directory.mkdir()
            toolchain.link_distributions(["boto3"], directory, with_dependencies=True)
        return directory

    def _cold_event(self) -> dict[str, Any]:
        request = workloads.Request(workloads.stream_ids(self.prefix("cold"), 3), now_ms())
        return workloads.sqs_event([request], sent_timestamp=now_ms())

    def _cold_run(
        self, emulator: EmulatorProcess, module: str, paths: list[Path], python_flags: list[str]
    ) -> dict[str, Any]:
        spec = driver_spec(module, paths, [self._cold_event()])
        child = self.ours(spec, emulator, ZEGO_RATE_LIMIT, python_flags=python_flags)
        event = child.result["events"][0]
        if event.get("batchItemFailures") != 0:
            raise BenchError(f"{module} failed its cold-start event: {event}")
        return {
            # Lambda's cold start ends when the first answer is ready; the interpreter's exit
            # (tearing down boto3's objects: tens of ms) never happens on its request path.
            "toAnswer": child.result["startup"] + child.result["inProcess"],
            "wall": child.wall,
            "startup": child.result["startup"],
            "import": child.result["import"],
            "firstEvent": event["wall"],
            "importAndFirstEvent": child.result["import"] + event["wall"],
            "inProcess": child.result["inProcess"],
            "cpuTotal": child.result["cpuTotal"],
            "maxRssKiB": child.result["maxRssKiB"],
            "modules": child.result["modules"],
            "emfLines": child.emf_lines,
        }

    def _interleaved_cold_runs(
        self, emulator: EmulatorProcess, targets: dict[str, tuple[str, list[Path], list[str]]]
    ) -> dict[str, list[dict[str, Any]]]:
        """`self.runs` rounds; each round runs every target once, the order rotating from round to
        round so that no target always follows the same one (the machine's state drifts)."""
        for target in targets.values():  # warm the page cache (and .venv's .pyc); not counted
            self._cold_run(emulator, *target)
        labels = list(targets)
        runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
        for number in range(self.runs):
            shift = number % len(labels)
            order = labels[shift:] + labels[:shift]
            if number // len(labels) % 2:
                order.reverse()
            for label in order:
                runs[label].append(self._cold_run(emulator, *targets[label]))
        return runs

    def _ratio_row(
        self,
        name: str,
        where: str,
        ours_runs: list[dict[str, Any]],
        baseline_runs: list[dict[str, Any]],
        baseline_name: str,
        goal: float,
        judged_on: str = "toAnswer",
    ) -> Row:
        row = Row(
            name,
            f"fresh process: import + 1-record SQS event (secret + 1 call); {where}",
            goal=f"≤ {goal}x",
        )
        ours = {key: median([run[key] for run in ours_runs]) for key in ours_runs[0]}
        baseline = {key: median([run[key] for run in baseline_runs]) for key in baseline_runs[0]}
        ratios = {
            key: ours[key] / baseline[key] for key in ("toAnswer", "wall", "importAndFirstEvent", "cpuTotal")
        }
        # Each round ran both back to back: the median of the rounds' ratios is steadier under
        # a shared machine's drift than the ratio of the medians.
        paired = median(
            [
                mine[judged_on] / theirs[judged_on]
                for mine, theirs in zip(ours_runs, baseline_runs, strict=True)
            ]
        )

        def figures(medians: dict[str, Any]) -> str:
            return (
                f"{medians['toAnswer'] * 1000:.0f} ms to answer (start-up {medians['startup'] * 1000:.0f} + "
                f"import {medians['import'] * 1000:.0f} + event {medians['firstEvent'] * 1000:.0f}); "
                f"CPU {medians['cpuTotal'] * 1000:.0f} ms"
            )

        row.measured = f"{figures(ours)}; median of {len(ours_runs)}"
        row.baseline = f"{baseline_name}: {figures(baseline)}"
        row.ratio = (
            f"{ratios[judged_on]:.3f}x {'to answer' if judged_on == 'toAnswer' else 'import+event'} "
            f"(paired {paired:.3f}x; to answer {ratios['toAnswer']:.3f}x, import+event "
            f"{ratios['importAndFirstEvent']:.3f}x, CPU {ratios['cpuTotal']:.3f}x)"
        )
        row.met = ratios[judged_on] <= goal
        row.figures = {
            "runs": {"ours": ours_runs, "baseline": baseline_runs},
            "medians": {"ours": ours, "baseline": baseline},
            "ratios": ratios,
            "pairedRatio": paired,
            "judgedOn": judged_on,
        }
        return row

    def _importtime(
        self, emulator: EmulatorProcess, module: str, paths: list[Path], python_flags: list[str]
    ) -> dict[str, Any]:
        spec = driver_spec(module, paths, [self._cold_event()])
        child = self.ours(spec, emulator, ZEGO_RATE_LIMIT, python_flags=[*python_flags, "-X", "importtime"])
        return importtime.summary(importtime.parse(child.stderr))

    # ----- for the cost: what the function logs at the template's level (INFO) ---------------

    def log_volume(self) -> dict[str, Any]:
        """Bytes written to CloudWatch Logs: per invocation, and per decision."""
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.set_latency(0.0)
        env_extra = {"POWERTOOLS_LOG_LEVEL": "INFO"}
        sizes = {}
        for decisions in (1, 10):
            requests = [
                workloads.Request(workloads.stream_ids(self.prefix("log"), 1), now_ms() + index)
                for index in range(decisions)
            ]
            spec = driver_spec(
                "app", [FUNCTION_DIR], [workloads.sqs_event(requests, sent_timestamp=now_ms())]
            )
            env = self.services.function_environment(
                emulator, ZEGO_MAX_CALLS_PER_SECOND=str(ZEGO_RATE_LIMIT), **env_extra
            )
            sizes[decisions] = run_child([PYTHON, str(DRIVER)], spec, env, self.workdir).stdout_bytes
        per_decision = (sizes[10] - sizes[1]) / 9
        return {
            "bytesOneDecision": sizes[1],
            "bytesTenDecisions": sizes[10],
            "perDecision": per_decision,
            "perInvocation": sizes[1] - per_decision,
        }

    # ----- 5. memory -----------------------------------------------------------------------------

    def memory(self) -> Row:
        row = Row(
            "memory",
            "1 invocation, 10,000 ids (10 x 1,000, distinct Sequences), 100 calls/s",
            baseline="—",
            goal="peak RSS ≤ 100 MB",
        )
        emulator = self.services.emulator(100)
        emulator.set_latency(0.0)
        runs = []
        for _ in range(self.runs):
            emulator.reset()
            requests = workloads.full_requests(
                self.prefix("mem"), 10, sequence=now_ms(), distinct_sequences=True
            )
            spec = driver_spec(
                "app",
                [FUNCTION_DIR],
                [workloads.sqs_event(requests, sent_timestamp=now_ms())],
                emulator=emulator,
            )
            child = self.ours(spec, emulator, 100)
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
            self.ours(driver_spec("app", [FUNCTION_DIR], [], import_only=True), emulator, 100).result[
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

    # ----- 6. package ----------------------------------------------------------------------------

    def package(self) -> Row:
        row = Row(
            "package",
            "`sam build` output, function + layer, unzipped, bytecode in",
            goal="≤ 10 MB",
        )
        build = self._build()
        if build is None:
            row.status = "skipped"
            row.measured = "skipped: run make tools"
            return row
        total = build["functionBytes"] + build["layerBytes"]
        row.measured = (
            f"{total / MB:.2f} MB ({total / MIB:.2f} MiB: function {build['functionBytes'] / 1000:.0f} kB "
            f"+ layer {build['layerBytes'] / MB:.2f} MB; {build['pycFiles']} .pyc)"
        )
        row.baseline = f"the whole layer, unpruned, with .pyc: {build['wholeLayerBytes'] / MB:.2f} MB"
        row.ratio = f"{total / (10 * MB):.2f} of the goal"
        row.met = total <= 10 * MB
        row.figures = build
        return row

    def _build_quietly(self) -> dict[str, Any] | None:
        try:
            return self._build()
        except (BenchError, toolchain.ToolchainError) as error:
            print(f"  (no build for the as-built cold start: {error})", file=sys.stderr)
            return None

    def _build(self) -> dict[str, Any] | None:
        """`sam build` into a temporary directory, as the Makefile runs it (scripts/sam-build), and
        the layer's Makefile once more without pruning (the baseline's layer); None without tools."""
        if self.build is not None:
            return self.build
        if not SAM.exists():
            return None
        started = time.monotonic()
        build = toolchain.sam_build(self.workdir / "sam-build", timeout=SAM_BUILD_TIMEOUT_SECONDS)
        build_seconds = time.monotonic() - started
        whole_layer = self.workdir / "whole-layer"
        toolchain.build_layer(whole_layer, prune=False, timeout=SAM_BUILD_TIMEOUT_SECONDS)
        self.build = {
            "functionDir": str(build.function_dir),
            "layerDir": str(build.layer_dir),
            "wholeLayerDir": str(whole_layer),
            "functionBytes": toolchain.tree_size(build.function_dir),
            "layerBytes": toolchain.tree_size(build.layer_dir),
            "wholeLayerBytes": toolchain.tree_size(whole_layer),
            "layerPackages": toolchain.package_sizes(build.layer_dir / "python"),
            "wholeLayerPackages": toolchain.package_sizes(whole_layer / "python"),
            "pycFiles": sum(1 for _ in build.directory.rglob("*.pyc")),
            "buildSeconds": build_seconds,
        }
        return self.build


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
            bench = Bench(services, workdir, args.runs, args.long_runs, args.cpu_pairs)
            fleet = FleetBenchmarks(Context(services, workdir, args.long_runs, bench.prefix))
            benchmarks: dict[str, Callable[[], Row | list[Row]]] = {
                "throughput": bench.throughput,
                "fleet_one": fleet.fleet_one,
                "fleet_four": fleet.fleet_four,
                "outage": fleet.outage,
                "call_efficiency": bench.call_efficiency,
                "cpu_per_call": bench.cpu_per_call,
                "cold_start": bench.cold_start,
                "memory": bench.memory,
                "package": bench.package,
            }
            # package first: the as-built cold start reuses its build
            for name in sorted(args.selected, key=lambda name: (name != "package", NAMES.index(name))):
                print(f"running {name} ...", file=sys.stderr, flush=True)
                began = time.monotonic()
                try:
                    produced = benchmarks[name]()
                except Exception as error:  # reported, and the run exits 1; the others still run
                    traceback.print_exc()
                    errors[name] = "".join(traceback.format_exception_only(error)).strip()
                    rows[name] = [
                        Row(name, "", status="error", measured=f"could not run: {type(error).__name__}")
                    ]
                    continue
                rows[name] = produced if isinstance(produced, list) else [produced]
                print(f"  {name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
            importtimes = bench.importtime
            logs = None
            if "throughput" in rows and rows["throughput"][0].status == "ran":
                try:
                    logs = bench.log_volume()
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


if __name__ == "__main__":
    sys.exit(main())
