"""What the fleet's benchmarks share (bench/benchmarks/fleet_one.py, fleet_four.py and outage.py):
one ZEGO budget shared through the rate ledger (one environment, and four draining a queue
together), and riding out a ZEGO outage and a brownout.

The fleet's shape (instances, each one's static share, the fleet's budget, the arrival jitter)
comes from the template's defaults (devkit.template.default_fleet_shape), never from here.

Where a figure needs ZEGO's own record of every call (when the first and the last arrived, which
calls a dead gateway refused), the ZEGO emulator runs in this process, as the system tests run it:
the measured processes are the environments, each a process of its own (bench/fleet_env.py over
zegosim.lambda_runtime), and this process only waits for them. Every environment gives up by
itself after a bounded time, and is killed by its handle if it does not.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devkit.template import FleetShape
from zegosim.aws import Stack, client, create_rate_ledger, create_stack

from .common import APP_ID, ZEGO_RATE_LIMIT, BenchError
from .services import PYTHON, ROOT, Services

if TYPE_CHECKING:
    from collections.abc import Sequence

ZEGO_LATENCY_SECONDS = 0.150
JITTER_MS = 40  # the emulator's network jitter, and the function's ZEGO_ARRIVAL_JITTER_MS
FLEET_IDS = 4_000
ENVIRONMENT_MAX_SECONDS = 120.0  # each environment gives up (saying what is left) by then


class Environments:
    """Execution environments of the function, each a process of its own polling one queue, as
    Lambda runs concurrent instances (tests/system/conftest.py's, for the benchmarks)."""

    def __init__(
        self,
        stack: Stack,
        count: int,
        environment: dict[str, str],
        directory: Path,
        *,
        max_seconds: float,
        function_timeout: float = 60.0,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._count = count
        self.max_seconds = max_seconds
        self.started = time.time()
        self.processes: list[subprocess.Popen[bytes]] = []
        for number in range(count):
            with (directory / f"env-{number}.err").open("wb") as stderr:
                self.processes.append(
                    subprocess.Popen(  # noqa: S603 - our own interpreter and module
                        [
                            PYTHON,
                            "-m",
                            "bench.fleet_env",
                            "--queue-url",
                            stack.queue_url,
                            "--queue-arn",
                            stack.queue_arn,
                            "--function-timeout",
                            str(function_timeout),
                            "--max-seconds",
                            str(max_seconds),
                            "--idle-polls",
                            "2",
                            "--stats",
                            str(directory / f"env-{number}.json"),
                        ],
                        env=environment,
                        cwd=ROOT,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                    )
                )

    def wait(self) -> list[dict[str, Any]]:
        """Every environment's PollStats (with "returncode"), once all have exited. One that
        outlives its own limit by a minute is killed; one that gave up still reports."""
        deadline = time.monotonic() + self.max_seconds + 60
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        stats = []
        for number, process in enumerate(self.processes):
            path = self._directory / f"env-{number}.json"
            if not path.exists():
                error = (self._directory / f"env-{number}.err").read_text()[-2000:]
                raise BenchError(f"environment {number} exited {process.returncode} with no stats:\n{error}")
            stats.append({**json.loads(path.read_text()), "returncode": process.returncode})
        return stats

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def send_bodies(stack: Stack, environment: dict[str, str], bodies: Sequence[dict[str, Any]]) -> None:
    """Every body on the stack's queue, ten per SendMessageBatch."""
    sqs = client("sqs", environment)
    for start in range(0, len(bodies), 10):
        answer = sqs.send_message_batch(
            QueueUrl=stack.queue_url,
            Entries=[
                {"Id": str(index), "MessageBody": json.dumps(body)}
                for index, body in enumerate(bodies[start : start + 10])
            ],
        )
        if answer.get("Failed"):
            raise BenchError(f"SendMessageBatch failed: {answer['Failed']}")


def ledger_environment(shape: FleetShape, table: str | None, jitter_ms: int) -> dict[str, str]:
    """The function's budget variables for `shape`, with the ledger `table` (or none)."""
    variables = {
        "ZEGO_FLEET_CALLS_PER_SECOND": str(shape.fleet_calls_per_second),
        "ZEGO_MAX_CALLS_PER_SECOND": str(shape.per_instance_calls_per_second),
        "ZEGO_ARRIVAL_JITTER_MS": str(jitter_ms),
    }
    if table is not None:
        variables["ZEGO_RATE_LEDGER_TABLE"] = table
    return variables


def requests_per_call(budget: dict[str, Any] | None) -> float:
    if not budget or not budget.get("taken"):
        return float("nan")
    return float(budget["ledger_requests"]) / float(budget["taken"])


_SERIAL = itertools.count(1)


def resource_name(label: str) -> str:
    """A name for a stack or a ledger table that no other run (nor this one) has used."""
    return f"bench-{label}-{os.getpid()}-{next(_SERIAL)}-{uuid.uuid4().hex[:6]}"


def rate_ledger(services: Services) -> str:
    """A fresh rate ledger table in moto: its name."""
    return create_rate_ledger(resource_name("ledger"), services.moto.environment())


def new_stack(
    services: Services, label: str, *, max_receive_count: int = 5, visibility_timeout: int
) -> Stack:
    """A fresh stack (secret, queue, dead letter queue) in moto, for environments to poll."""
    return create_stack(
        app_id=APP_ID,
        server_secret=services.server_secret,
        environment=services.moto.environment(),
        name=resource_name(label),
        max_receive_count=max_receive_count,
        visibility_timeout=visibility_timeout,
    )


def check_budget(shape: FleetShape) -> None:
    if shape.fleet_calls_per_second != ZEGO_RATE_LIMIT:
        raise BenchError(
            f"the template's fleet budget is {shape.fleet_calls_per_second} calls/s, "
            f"the benchmark's ZEGO allows {ZEGO_RATE_LIMIT}: the ceiling would not be 400 ids/s"
        )


def calls_per_environment(stats: Sequence[dict[str, Any]]) -> list[int]:
    """Calls each environment wrote (its budget's turns taken)."""
    return [(s["budget"] or {}).get("taken", 0) for s in stats]
