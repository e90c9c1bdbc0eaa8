"""What every benchmark module shares: the rows of the table, the measured child processes and
the driver's spec, the workload's constants, and the Context and Benchmark the harness
(bench/harness.py) hands each benchmark and knows it by."""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import workloads
from .driver import RESULT_PREFIX
from .services import PYTHON, ROOT, EmulatorProcess, Services

BENCH = ROOT / "bench"
FUNCTION_DIR = ROOT / "functions" / "resume_streams"
DRIVER = BENCH / "driver.py"
APP_ID = 1234567890
ZEGO_RATE_LIMIT = 20  # ZEGO's calls per second per AppId
CEILING_IDS_PER_SECOND = ZEGO_RATE_LIMIT * workloads.MAX_IDS_PER_CALL  # 400
CHILD_TIMEOUT_SECONDS = 180.0
MB = 1_000_000  # goals are in decimal megabytes: the stricter reading


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


def warm_then_4000_ids(
    prefix: Callable[[str], str],
    label: str,
    emulator: EmulatorProcess,
    module: str = "app",
    paths: Sequence[Path] = (FUNCTION_DIR,),
) -> dict[str, Any]:
    """A driver run: a one-id warm-up, then one event of 4 x 1,000 ids sharing a Sequence."""
    requests = workloads.full_requests(prefix(label), 4, sequence=now_ms(), distinct_sequences=False)
    return driver_spec(
        module,
        paths,
        [workloads.sqs_event(requests, sent_timestamp=now_ms())],
        warmup=[one_id_event(prefix("warm"))],
        emulator=emulator,
    )


@dataclass
class Context:
    """What the harness hands every benchmark: the services, a scratch directory, the counts from
    the command line, and what one benchmark leaves for another."""

    services: Services
    workdir: Path
    runs: int
    long_runs: int
    cpu_pairs: int = 5
    build: dict[str, Any] | None = None  # set by the package benchmark; the as-built cold start reuses it
    importtime: dict[str, Any] = field(default_factory=dict)  # set by the cold start
    _serial: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def prefix(self, label: str) -> str:
        """Stream ids never seen before: ZEGO's Sequence rule never meets an earlier run."""
        return f"bench-{label}-{os.getpid()}-{next(self._serial)}"

    def driver(self, spec: dict[str, Any], env: dict[str, str], python_flags: Sequence[str] = ()) -> Child:
        """Run bench/driver.py on `spec` in `env`."""
        return run_child([PYTHON, *python_flags, str(DRIVER)], spec, env, self.workdir)

    def ours(
        self,
        spec: dict[str, Any],
        emulator: EmulatorProcess,
        calls_per_second: int,
        python_flags: Sequence[str] = (),
        **extra: str,
    ) -> Child:
        """Run the driver (for our handler or the idiomatic baseline) with the function's env."""
        # The environment alone, with the whole fleet's budget as its share: the settings
        # refuse a share above the fleet's.
        budget = {
            "ZEGO_MAX_CALLS_PER_SECOND": str(calls_per_second),
            "ZEGO_FLEET_CALLS_PER_SECOND": str(calls_per_second),
        }
        env = self.services.function_environment(emulator, **{**budget, **extra})
        return self.driver(spec, env, python_flags)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark as the harness knows it: `name` is what `--only` selects (and the key of its
    rows in the results); `run` measures, and returns its row or rows."""

    name: str
    run: Callable[[Context], Row | list[Row]]
