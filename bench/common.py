"""What every benchmark module shares: the rows of the table, the measured child processes and
the driver's spec, the workload's constants."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import workloads
from .driver import RESULT_PREFIX
from .services import ROOT, EmulatorProcess

BENCH = ROOT / "bench"
FUNCTION_DIR = ROOT / "functions" / "resume_streams"
DRIVER = BENCH / "driver.py"
APP_ID = 1234567890
ZEGO_RATE_LIMIT = 20  # ZEGO's calls per second per AppId
CEILING_IDS_PER_SECOND = ZEGO_RATE_LIMIT * workloads.MAX_IDS_PER_CALL  # 400
CHILD_TIMEOUT_SECONDS = 180.0


class BenchError(RuntimeError):
    """A benchmark could not run (as opposed to: it ran and missed its goal)."""


@dataclass
class Row:
    name: str
    workload: str
    measured: str = ""
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None  # None: skipped or not applicable
    status: str = "ran"  # ran | skipped | error
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Child:
    result: dict[str, Any]
    wall: float  # from just before the process started to its exit, seen by the parent
    stdout_lines: int
    stdout_bytes: int  # the function's own output: logs and EMF metrics, not the result line
    emf_lines: int
    stderr: str


def run_child(argv: Sequence[str], spec: dict[str, Any], env: dict[str, str], workdir: Path) -> Child:
    """Run one measured process; its figures are the JSON after RESULT_PREFIX on stdout."""
    spec_path = workdir / f"spec-{time.monotonic_ns()}.json"
    spec_path.write_text(json.dumps(spec))
    command = [*argv, str(spec_path)]
    started = time.monotonic()
    if argv[-1] == str(DRIVER):
        command.append(repr(started))
    completed = subprocess.run(  # noqa: S603 - our own interpreter and scripts
        command,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_SECONDS,
        check=False,
    )
    wall = time.monotonic() - started
    spec_path.unlink()
    lines = completed.stdout.splitlines()
    results = [line[len(RESULT_PREFIX) :] for line in lines if line.startswith(RESULT_PREFIX)]
    if completed.returncode != 0 or len(results) != 1:
        tail = "\n".join(completed.stderr.splitlines()[-20:])
        raise BenchError(f"{Path(argv[-1]).name} exited {completed.returncode} with no result:\n{tail}")
    return Child(
        result=json.loads(results[0]),
        wall=wall,
        stdout_lines=len(lines) - 1,
        stdout_bytes=sum(len(line.encode()) + 1 for line in lines if not line.startswith(RESULT_PREFIX)),
        emf_lines=sum(1 for line in lines if '"_aws"' in line),
        stderr=completed.stderr,
    )


def driver_spec(
    module: str,
    paths: Sequence[Path],
    events: list[dict[str, Any]],
    *,
    warmup: list[dict[str, Any]] | None = None,
    emulator: EmulatorProcess | None = None,
    import_only: bool = False,
) -> dict[str, Any]:
    return {
        "module": module,
        "paths": [str(path) for path in paths],
        "warmup": warmup or [],
        "events": events,
        "emulator": emulator.base_url if emulator else None,
        "emulator_token": emulator.admin_token if emulator else None,  # for its admin API
        "import_only": import_only,
        "timeout_seconds": 60,  # template.yaml: Timeout
    }


def now_ms() -> int:
    return int(time.time() * 1000)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def one_id_event(prefix: str) -> dict[str, Any]:
    request = workloads.Request(workloads.stream_ids(prefix, 1), now_ms())
    return workloads.sqs_event([request], sent_timestamp=now_ms())
