"""Cold start: ours and the idiomatic baseline (bench/baseline_idiomatic.py) from .venv, and as
built (the package benchmark's `sam build`, read-only, shipped .pyc): both, ours with the fleet's
rate ledger on (the template's default), and the libraries' floor (bench/floor_libraries.py), in
interleaved rounds; and where the import time goes (`python -X importtime`)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import importtime, workloads
from bench.common import (
    BENCH,
    FUNCTION_DIR,
    ZEGO_RATE_LIMIT,
    BenchError,
    Benchmark,
    Context,
    Row,
    driver_spec,
    median,
    now_ms,
)
from bench.fleet import rate_ledger
from bench.services import EmulatorProcess
from devkit import toolchain

from .package import build_quietly

# How long the handshakes with a far ZEGO take (TCP + TLS, a few round trips): the far row's
# connection set-up, the same for ours and the baseline.
FAR_SETUP_SECONDS = 0.1


@dataclass(frozen=True)
class Target:
    """One handler to start cold: its module, what goes first on sys.path, the interpreter's
    flags and environment variables beyond the function's."""

    module: str
    paths: list[Path]
    flags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def cold_start(context: Context) -> list[Row]:
    """Every target measured in the same rounds, each round in a different order: ours and the
    idiomatic baseline from .venv (warm .pyc), and as built (as Lambda runs them)."""
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.set_latency(0.0)
    targets = {
        "ours": Target("app", [FUNCTION_DIR]),
        "baseline": Target("baseline_idiomatic", [BENCH]),
    }
    build = context.build or build_quietly(context)
    if build is not None:
        # As Lambda runs it: only the built function (or the baseline), a built layer and
        # boto3 importable, isolated, and no .pyc written (-B): /var/task and /opt are
        # read-only. Each side ships the bytecode its build compiled (unchecked-hash): ours
        # from `sam build`; the baseline's code compiled the same way, on the whole layer
        # (the same lock, built by the same Makefile, not pruned: it imports Powertools'
        # batch and parameters utilities). boto3 keeps its .pyc: the runtime's is precompiled.
        # The floor runs on our layer: it imports what the function imports.
        flags = ["-I", "-S", "-B"]
        runtime = _runtime_boto3(context)
        layer = Path(build["layerDir"]) / "python"
        ours_built = [Path(build["functionDir"]), layer, runtime]
        targets["oursBuilt"] = Target("app", ours_built, flags)
        # One table for every round: each run's reservation has passed before the next starts,
        # so every cold start finds the fleet idle, as a first invocation after a quiet spell.
        ledger = {"ZEGO_RATE_LEDGER_TABLE": rate_ledger(context.services)}
        targets["oursBuiltLedger"] = Target("app", ours_built, flags, ledger)
        targets["floorBuilt"] = Target(
            "floor_libraries", [_compiled_alone(context, "floor_libraries.py"), layer, runtime], flags
        )
        baseline = _compiled_alone(context, "baseline_idiomatic.py")
        whole_layer = Path(build["wholeLayerDir"]) / "python"
        targets["baselineBuilt"] = Target("baseline_idiomatic", [baseline, whole_layer, runtime], flags)
    runs = _interleaved_cold_runs(context, emulator, targets)
    venv = "the project's .venv (.pyc cached)"
    rows = [_ratio_row("cold start", venv, runs["ours"], runs["baseline"], "baseline", 0.8)]
    context.importtime["ours"] = _importtime(context, emulator, targets["ours"])
    context.importtime["baseline"] = _importtime(context, emulator, targets["baseline"])
    if build is None:
        for name in (
            "cold start, as built",
            "bytecode: as built vs .venv",
            "cold start, as built, ledger on",
            "cold start: the libraries' floor",
            "cold start: ours vs the floor",
        ):
            rows.append(Row(name, "`sam build` output", status="skipped", measured="skipped: run make tools"))
        return rows
    built = "`sam build` output, read-only (-B), shipped .pyc"
    rows.append(
        _ratio_row(
            "cold start, as built",
            built,
            runs["oursBuilt"],
            runs["baselineBuilt"],
            "baseline built alike",
            0.6,
        )
    )
    rows.append(
        _ratio_row(
            "bytecode: as built vs .venv",
            f"{built}, against the same code from .venv (warm .pyc); goal on import + event",
            runs["oursBuilt"],
            runs["ours"],
            "ours from .venv",
            1.15,
            judged_on="importAndFirstEvent",
        )
    )
    rows.append(
        _ratio_row(
            "cold start, as built, ledger on",
            f"{built}, with the fleet's rate ledger (the template's default; the fleet idle)",
            runs["oursBuiltLedger"],
            runs["baselineBuilt"],
            "baseline built alike",
            None,
        )
    )
    rows.append(
        _ratio_row(
            "cold start: the libraries' floor",
            f"{built}: bench/floor_libraries.py, the least work on the function's own libraries",
            runs["floorBuilt"],
            runs["baselineBuilt"],
            "baseline built alike",
            None,
        )
    )
    rows.append(
        _ratio_row(
            "cold start: ours vs the floor",
            f"{built}: our code's own cost on top of the libraries'",
            runs["oursBuilt"],
            runs["floorBuilt"],
            "the floor",
            None,
        )
    )
    context.importtime["oursAsBuilt"] = _importtime(context, emulator, targets["oursBuilt"])
    context.importtime["baselineAsBuilt"] = _importtime(context, emulator, targets["baselineBuilt"])
    rows.append(_far_zego_row(context, emulator, targets))
    return rows


def _far_zego_row(context: Context, emulator: EmulatorProcess, targets: dict[str, Target]) -> Row:
    """Both as built again, with ZEGO's connection set-up taking FAR_SETUP_SECONDS, as Lambda
    meets it: on loopback the handshakes cost nothing, and what overlaps them is not seen."""
    emulator.set_connection_setup_delay(FAR_SETUP_SECONDS)
    try:
        built = {label: targets[label] for label in ("oursBuilt", "baselineBuilt")}
        runs = _interleaved_cold_runs(context, emulator, built)
    finally:
        emulator.set_connection_setup_delay(0.0)
    return _ratio_row(
        "cold start, as built, ZEGO far",
        f"the same as built, ZEGO's connection set-up taking {FAR_SETUP_SECONDS * 1000:.0f} ms for both",
        runs["oursBuilt"],
        runs["baselineBuilt"],
        "baseline built alike",
        None,
    )


def _compiled_alone(context: Context, name: str) -> Path:
    """A directory with bench/`name` alone, its bytecode compiled as our Makefiles compile it."""
    directory = context.workdir / f"as-built-{Path(name).stem}"
    if not directory.exists():
        directory.mkdir()
        shutil.copy2(BENCH / name, directory)
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


def _runtime_boto3(context: Context) -> Path:
    """boto3 and what it needs, linked from .venv: a stand-in for the runtime's."""
    directory = context.workdir / "lambda-runtime"
    if not directory.exists():
        directory.mkdir()
        toolchain.link_distributions(["boto3"], directory, with_dependencies=True)
    return directory


def _cold_event(context: Context) -> dict[str, Any]:
    request = workloads.Request(workloads.stream_ids(context.prefix("cold"), 3), now_ms())
    return workloads.sqs_event([request], sent_timestamp=now_ms())


def _cold_run(context: Context, emulator: EmulatorProcess, target: Target) -> dict[str, Any]:
    spec = driver_spec(target.module, target.paths, [_cold_event(context)])
    child = context.ours(spec, emulator, ZEGO_RATE_LIMIT, python_flags=target.flags, **target.env)
    event = child.result["events"][0]
    if event.get("batchItemFailures") != 0:
        raise BenchError(f"{target.module} failed its cold-start event: {event}")
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
    context: Context, emulator: EmulatorProcess, targets: dict[str, Target]
) -> dict[str, list[dict[str, Any]]]:
    """`context.runs` rounds; each round runs every target once, the order rotating from round to
    round so that no target always follows the same one (the machine's state drifts)."""
    for target in targets.values():  # warm the page cache (and .venv's .pyc); not counted
        _cold_run(context, emulator, target)
    labels = list(targets)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for number in range(context.runs):
        shift = number % len(labels)
        order = labels[shift:] + labels[:shift]
        if number // len(labels) % 2:
            order.reverse()
        for label in order:
            runs[label].append(_cold_run(context, emulator, targets[label]))
    return runs


def _ratio_row(
    name: str,
    where: str,
    ours_runs: list[dict[str, Any]],
    baseline_runs: list[dict[str, Any]],
    baseline_name: str,
    goal: float | None,
    judged_on: str = "toAnswer",
) -> Row:
    row = Row(
        name,
        f"fresh process: import + 1-record SQS event (secret + 1 call); {where}",
        goal=f"≤ {goal}x" if goal is not None else "—",
    )
    ours = {key: median([run[key] for run in ours_runs]) for key in ours_runs[0]}
    baseline = {key: median([run[key] for run in baseline_runs]) for key in baseline_runs[0]}
    ratios = {
        key: ours[key] / baseline[key] for key in ("toAnswer", "wall", "importAndFirstEvent", "cpuTotal")
    }
    # Each round ran both back to back: the median of the rounds' ratios is steadier under
    # a shared machine's drift than the ratio of the medians.
    paired = median(
        [mine[judged_on] / theirs[judged_on] for mine, theirs in zip(ours_runs, baseline_runs, strict=True)]
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
    row.met = ratios[judged_on] <= goal if goal is not None else None
    row.figures = {
        "runs": {"ours": ours_runs, "baseline": baseline_runs},
        "medians": {"ours": ours, "baseline": baseline},
        "ratios": ratios,
        "pairedRatio": paired,
        "judgedOn": judged_on,
    }
    return row


def _importtime(context: Context, emulator: EmulatorProcess, target: Target) -> dict[str, Any]:
    spec = driver_spec(target.module, target.paths, [_cold_event(context)])
    child = context.ours(
        spec, emulator, ZEGO_RATE_LIMIT, python_flags=[*target.flags, "-X", "importtime"], **target.env
    )
    return importtime.summary(importtime.parse(child.stderr))


BENCHMARK = Benchmark("cold_start", cold_start)
