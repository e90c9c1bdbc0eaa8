"""The fleet's benchmarks: one ZEGO budget shared through the rate ledger (one environment, and
four draining a queue together), and riding out a ZEGO outage and a brownout.

The fleet's shape (instances, each one's static share, the fleet's budget, the arrival jitter)
comes from the template's defaults (devkit.template.default_fleet_shape), never from here.

Where a figure needs ZEGO's own record of every call (when the first and the last arrived, which
calls a dead gateway refused), the ZEGO emulator runs in this process, as the system tests run it:
the measured processes are the environments, each a process of its own (bench/fleet_env.py over
zegosim.lambda_runtime), and this process only waits for them. Every environment gives up by
itself after a bounded time, and is killed by its handle if it does not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devkit.template import FleetShape, default_fleet_shape
from zegosim.aws import Stack, client, create_rate_ledger, create_stack, dead_lettered_stream_ids, drain
from zegosim.zego import Fault, ZegoEmulator

from . import workloads
from .common import (
    APP_ID,
    BENCH,
    CEILING_IDS_PER_SECOND,
    DRIVER,
    FUNCTION_DIR,
    ZEGO_RATE_LIMIT,
    BenchError,
    Row,
    driver_spec,
    median,
    now_ms,
    one_id_event,
    run_child,
)
from .services import PYTHON, ROOT, Services

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

ZEGO_LATENCY_SECONDS = 0.150
JITTER_MS = 40  # the emulator's network jitter, and the function's ZEGO_ARRIVAL_JITTER_MS
FLEET_IDS = 4_000
FOUR = 4
FOUR_MESSAGES = 40  # x 100 ids: each environment's first receive (10 messages) is a quarter
OUTAGE_SECONDS = 45.0
OUTAGE_DECISIONS = 100
OUTAGE_ENVIRONMENTS = 2
OUTAGE_VISIBILITY_SECONDS = 2
OUTAGE_MAX_RECEIVE_COUNT = 1000  # the template leaves giving up to the age rule; moto's default is 5
OUTAGE_PROBE_SECONDS = 1
OUTAGE_REDELIVERY_MAX_DELAY_SECONDS = 4
BROWNOUT_PROBABILITY = 0.5
ENVIRONMENT_MAX_SECONDS = 120.0  # each environment gives up (saying what is left) by then


@dataclass
class Context:
    """What a fleet benchmark needs of bench/run.py's Bench."""

    services: Services
    workdir: Path
    long_runs: int
    prefix: Callable[[str], str]


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


class FleetBenchmarks:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.services = context.services
        self._serial = 0

    def _name(self, label: str) -> str:
        self._serial += 1
        return f"bench-{label}-{os.getpid()}-{self._serial}-{uuid.uuid4().hex[:6]}"

    def _table(self) -> str:
        return create_rate_ledger(self._name("ledger"), self.services.moto.environment())

    def _check_budget(self, shape: FleetShape) -> None:
        if shape.fleet_calls_per_second != ZEGO_RATE_LIMIT:
            raise BenchError(
                f"the template's fleet budget is {shape.fleet_calls_per_second} calls/s, "
                f"the benchmark's ZEGO allows {ZEGO_RATE_LIMIT}: the ceiling would not be 400 ids/s"
            )

    # ----- fleet_one: one busy environment, the ledger on ---------------------------------------

    def fleet_one(self) -> Row:
        shape = default_fleet_shape()
        self._check_budget(shape)
        row = Row(
            "fleet: one busy environment",
            f"4,000 ids, 1 event of 4x1,000 (one Sequence); ZEGO 150 ms, {ZEGO_RATE_LIMIT} calls/s, "
            f"jitter {JITTER_MS} ms (J = {JITTER_MS}); the template's shape "
            f"({shape.max_concurrent_instances} instances x {shape.per_instance_calls_per_second}/s, "
            f"fleet {shape.fleet_calls_per_second}/s), ledger on",
            goal="≥ 0.90, zero 30002; ≤ 0.25 DynamoDB requests per call",
        )
        emulator = self.services.emulator(ZEGO_RATE_LIMIT)
        emulator.set_latency(ZEGO_LATENCY_SECONDS)
        emulator.set_jitter(JITTER_MS / 1000, seed=1)
        alone = dataclasses.replace(shape, per_instance_calls_per_second=shape.fleet_calls_per_second)
        variants: dict[str, list[dict[str, Any]]] = {"ledger": [], "aloneAtFleetRate": [], "staticShare": []}
        try:
            for number in range(self.context.long_runs):
                # The ledger, and the pacer alone at the same rate: the difference is the ledger's
                # cost per call. Interleaved, so both meet the same state of the machine.
                variants["ledger"].append(self._one_run(emulator, shape, self._table(), "one"))
                variants["aloneAtFleetRate"].append(self._one_run(emulator, alone, None, "alone"))
                if number == 0:  # what the fleet did before the ledger: ~21 s; once is enough
                    variants["staticShare"].append(self._one_run(emulator, shape, None, "static"))
        finally:
            emulator.set_jitter(0.0)
            emulator.set_latency(0.0)
        ledger, alone_runs, static = variants["ledger"], variants["aloneAtFleetRate"], variants["staticShare"]
        ids_per_second = median([run["idsPerSecond"] for run in ledger])
        ratio = ids_per_second / CEILING_IDS_PER_SECOND
        per_call = median([run["requestsPerCall"] for run in ledger])
        rate_limited = sum(run["rateLimited30002"] for variant in variants.values() for run in variant)
        complete = all(
            run["resumedStreamIds"] == FLEET_IDS and run["batchItemFailures"] == 0
            for variant in variants.values()
            for run in variant
        )
        added_ms = median(
            [
                (mine["seconds"] / mine["calls"] - theirs["seconds"] / theirs["calls"]) * 1000
                for mine, theirs in zip(ledger, alone_runs, strict=True)
            ]
        )
        request_ms = median([run["ledgerRequests"].get("medianMs", float("nan")) for run in ledger])
        request_per_call_ms = median(
            [run["ledgerRequests"].get("totalMs", 0.0) / run["calls"] for run in ledger]
        )
        alone_ratio = median([run["idsPerSecond"] for run in alone_runs]) / CEILING_IDS_PER_SECOND
        static_ratio = median([run["idsPerSecond"] for run in static]) / CEILING_IDS_PER_SECOND
        row.measured = (
            f"{ids_per_second:.0f} ids/s (median of {len(ledger)}; "
            f"{sum(run['rateLimited30002'] for run in ledger)} x 30002, "
            f"max {max(run['maxCallsInAnyWindow'] for run in ledger)} calls in any 1 s); "
            f"{per_call:.3f} DynamoDB requests/call; ledger adds {added_ms:+.1f} ms/call "
            f"(requests {request_ms:.1f} ms each, {request_per_call_ms:.2f} ms/call)"
        )
        row.baseline = (
            f"{CEILING_IDS_PER_SECOND} ids/s; pacing alone at {shape.fleet_calls_per_second}/s: "
            f"{alone_ratio:.3f}; the static share ({shape.per_instance_calls_per_second}/s, no ledger): "
            f"{static_ratio:.3f}"
        )
        row.ratio = f"{ratio:.3f}"
        row.met = ratio >= 0.90 and rate_limited == 0 and complete and per_call <= 0.25
        row.figures = {
            "shape": shape.__dict__,
            "variants": variants,
            "medianIdsPerSecond": ids_per_second,
            "ratio": ratio,
            "aloneAtFleetRateRatio": alone_ratio,
            "staticShareRatio": static_ratio,
            "requestsPerCall": per_call,
            "ledgerAddedMsPerCall": added_ms,
            "ledgerRequestMedianMs": request_ms,
            "ledgerRequestMsPerCall": request_per_call_ms,
            "rateLimited30002": rate_limited,
            "complete": complete,
        }
        return row

    def _one_run(self, emulator: Any, shape: FleetShape, table: str | None, label: str) -> dict[str, Any]:
        """A warm-up of one id, then one event of 4 x 1,000 ids (one Sequence), in a fresh driver
        process running the handler through bench/ledger_probe.py."""
        emulator.reset()
        requests = workloads.full_requests(
            self.context.prefix(label), 4, sequence=now_ms(), distinct_sequences=False
        )
        spec = driver_spec(
            "ledger_probe",
            [FUNCTION_DIR, BENCH],
            [workloads.sqs_event(requests, sent_timestamp=now_ms())],
            warmup=[one_id_event(self.context.prefix("warm"))],
            emulator=emulator,
        )
        env = self.services.function_environment(emulator, **ledger_environment(shape, table, JITTER_MS))
        result = run_child([PYTHON, str(DRIVER)], spec, env, self.context.workdir).result
        event = result["events"][0]
        zego = event["emulator"]
        report = result.get("report") or {}
        budget = report.get("budget") or {}
        return {
            "seconds": event["wall"],
            "idsPerSecond": FLEET_IDS / event["wall"],
            "calls": zego["calls"],
            "rateLimited30002": zego["rateLimited"],
            "maxCallsInAnyWindow": zego["maxCallsInAnyWindow"],
            "resumedStreamIds": zego["resumedStreamIds"],
            "batchItemFailures": event.get("batchItemFailures"),
            "budget": budget,  # since the process started: the warm-up's call included
            "requestsPerCall": requests_per_call(budget),
            "ledgerRequests": report.get("ledgerRequests") or {},
        }

    # ----- fleet_four: four environments draining one queue -------------------------------------

    def fleet_four(self) -> Row:
        shape = default_fleet_shape(MaxConcurrentInstances=str(FOUR))
        self._check_budget(shape)
        ids_per_message = FLEET_IDS // FOUR_MESSAGES
        row = Row(
            "fleet: four environments",
            f"4,000 ids as {FOUR_MESSAGES} messages x {ids_per_message} (one Sequence) drained by {FOUR} "
            f"environments (processes) through the ledger; ZEGO 150 ms, {ZEGO_RATE_LIMIT} calls/s, "
            f"jitter {JITTER_MS} ms (J = {JITTER_MS}); the template's shape for {FOUR} instances "
            f"({shape.per_instance_calls_per_second}/s each alone)",
            goal="≥ 0.85, zero 30002",
        )
        runs = [self._four_run(shape, number) for number in range(self.context.long_runs)]
        ids_per_second = median([run["idsPerSecond"] for run in runs])
        ratio = ids_per_second / CEILING_IDS_PER_SECOND
        rate_limited = sum(run["rateLimited30002"] for run in runs)
        complete = all(run["everyIdResumed"] and run["allExitedCleanly"] for run in runs)
        per_call = median([run["requestsPerCall"] for run in runs])
        request_ms = median([run["ledgerRequestMedianMs"] for run in runs])
        request_per_call_ms = median([run["ledgerRequestMsPerCall"] for run in runs])
        row.measured = (
            f"{ids_per_second:.0f} ids/s first call to last (median of {len(runs)}; {rate_limited} x 30002, "
            f"max {max(run['maxCallsInAnyWindow'] for run in runs)} calls in any 1 s); "
            f"{per_call:.3f} DynamoDB requests/call; requests {request_ms:.1f} ms each, "
            f"{request_per_call_ms:.2f} ms/call; calls per environment "
            f"{'/'.join(str(n) for n in runs[len(runs) // 2]['callsPerEnvironment'])}"
        )
        row.baseline = f"{CEILING_IDS_PER_SECOND} ids/s"
        row.ratio = f"{ratio:.3f}"
        row.met = ratio >= 0.85 and rate_limited == 0 and complete
        row.figures = {
            "shape": shape.__dict__,
            "runs": runs,
            "medianIdsPerSecond": ids_per_second,
            "ratio": ratio,
            "requestsPerCall": per_call,
            "ledgerRequestMedianMs": request_ms,
            "ledgerRequestMsPerCall": request_per_call_ms,
            "rateLimited30002": rate_limited,
            "complete": complete,
        }
        return row

    def _four_run(self, shape: FleetShape, number: int) -> dict[str, Any]:
        services = self.services
        aws = services.moto.environment()
        stack = create_stack(
            app_id=APP_ID,
            server_secret=services.server_secret,
            environment=aws,
            name=self._name("four"),
            visibility_timeout=90,
        )
        table = self._table()
        prefix = self.context.prefix("four")
        sequence = now_ms()
        ids_per_message = FLEET_IDS // FOUR_MESSAGES
        bodies: list[dict[str, Any]] = [
            {
                "streamIds": list(workloads.stream_ids(prefix, ids_per_message, start=m * ids_per_message)),
                "sequence": sequence,
            }
            for m in range(FOUR_MESSAGES)
        ]
        send_bodies(stack, aws, bodies)
        with ZegoEmulator(
            APP_ID,
            services.server_secret,
            rate_limit=ZEGO_RATE_LIMIT,
            latency=ZEGO_LATENCY_SECONDS,
            network_jitter=JITTER_MS / 1000,
            jitter_seed=number + 1,
        ) as zego:
            env = services.function_environment(
                zego, stack=stack, **ledger_environment(shape, table, JITTER_MS)
            )
            fleet = Environments(
                stack,
                FOUR,
                env,
                self.context.workdir / f"four-{number}",
                max_seconds=ENVIRONMENT_MAX_SECONDS,
            )
            try:
                stats = fleet.wait()
            finally:
                fleet.stop()
            took = time.time() - fleet.started
            calls = zego.calls()
            resumed = zego.resumed_stream_ids()
            rate_limited = zego.rate_limited_count()
            max_window = zego.max_calls_in_any_window()
        if len(calls) < 2:
            raise BenchError(f"four environments made {len(calls)} calls")
        span = calls[-1].arrival - calls[0].arrival
        expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
        taken = sum((s["budget"] or {}).get("taken", 0) for s in stats)
        ledger_requests = sum((s["budget"] or {}).get("ledger_requests", 0) for s in stats)
        timings = [s.get("ledgerRequests") or {} for s in stats]
        request_count = sum(t.get("requests", 0) for t in timings)
        request_total_ms = sum(t.get("totalMs", 0.0) for t in timings)
        return {
            "seconds": took,
            "firstToLastCallSeconds": span,
            # calls - 1 intervals between the first call and the last: the last call's ids count
            # for its share of the span only
            "idsPerSecond": FLEET_IDS * (len(calls) - 1) / len(calls) / span,
            "calls": len(calls),
            "rateLimited30002": rate_limited,
            "maxCallsInAnyWindow": max_window,
            "everyIdResumed": expected <= resumed,
            "allExitedCleanly": all(s["returncode"] == 0 for s in stats),
            "callsPerEnvironment": [(s["budget"] or {}).get("taken", 0) for s in stats],
            "received": [s["received"] for s in stats],
            "requestsPerCall": ledger_requests / taken if taken else float("nan"),
            "ledgerRequests": ledger_requests,
            "ledgerRequestMedianMs": median([t["medianMs"] for t in timings if t.get("requests")]),
            "ledgerRequestMsPerCall": request_total_ms / taken if taken else float("nan"),
            "timedRequests": request_count,
            "budgets": [s["budget"] for s in stats],
        }

    # ----- outage: ZEGO's gateway down, then a brownout -----------------------------------------

    def outage(self) -> list[Row]:
        shape = default_fleet_shape()
        self._check_budget(shape)
        return [self._outage_row(shape), self._brownout_row(shape)]

    def _drill_setup(
        self, shape: FleetShape, label: str
    ) -> tuple[Stack, dict[str, str], list[dict[str, Any]]]:
        services = self.services
        aws = services.moto.environment()
        stack = create_stack(
            app_id=APP_ID,
            server_secret=services.server_secret,
            environment=aws,
            name=self._name(label),
            max_receive_count=OUTAGE_MAX_RECEIVE_COUNT,
            visibility_timeout=OUTAGE_VISIBILITY_SECONDS,
        )
        prefix = self.context.prefix(label)
        base = now_ms()
        bodies = [
            {"streamIds": [f"{prefix}-{n}-a", f"{prefix}-{n}-b"], "sequence": base + n}
            for n in range(OUTAGE_DECISIONS)
        ]
        send_bodies(stack, aws, bodies)
        extra = {
            **ledger_environment(shape, self._table(), shape.arrival_jitter_ms),
            "ZEGO_OUTAGE_PROBE_SECONDS": str(OUTAGE_PROBE_SECONDS),
            "REDELIVERY_MAX_DELAY_SECONDS": str(OUTAGE_REDELIVERY_MAX_DELAY_SECONDS),
        }
        return stack, extra, bodies

    def _settle(self, stack: Stack, bodies: Sequence[dict[str, Any]], resumed: set[str]) -> dict[str, Any]:
        aws = self.services.moto.environment()
        letters = drain(stack.dead_letter_queue_url, aws)
        attributes = client("sqs", aws).get_queue_attributes(
            QueueUrl=stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
        lettered = set(dead_lettered_stream_ids(letters))
        return {
            "ids": len(expected),
            "resumed": len(expected & resumed),
            "deadLetters": len(letters),
            "deadLetteredIds": len(expected & lettered),
            # neither resumed nor dead-lettered: a decision the fleet dropped
            "lost": len(expected - resumed - lettered),
            "leftOnQueue": {key: int(value) for key, value in attributes.items()},
        }

    def _outage_row(self, shape: FleetShape) -> Row:
        row = Row(
            "outage: ZEGO down",
            f"{OUTAGE_DECISIONS} decisions x 2 ids wait while ZEGO answers HTTP 503 to everything for "
            f"{OUTAGE_SECONDS:.0f} s; {OUTAGE_ENVIRONMENTS} environments poll, the ledger on; visibility "
            f"{OUTAGE_VISIBILITY_SECONDS} s, probe {OUTAGE_PROBE_SECONDS} s, redelivery ≤ "
            f"{OUTAGE_REDELIVERY_MAX_DELAY_SECONDS} s",
            baseline="the issue's figures: ~8 calls/env/s, busy ~100%",
            goal="0 lost, 0 dead-lettered; ≤ 1.3 calls/env/s; busy ≤ 25%; all resumed ≤ 12 s after",
        )
        stack, extra, bodies = self._drill_setup(shape, "outage")
        with ZegoEmulator(APP_ID, self.services.server_secret, rate_limit=ZEGO_RATE_LIMIT) as zego:
            zego.inject_randomly([Fault.http(503)], probability=1.0)
            env = self.services.function_environment(zego, stack=stack, **extra)
            fleet = Environments(
                stack,
                OUTAGE_ENVIRONMENTS,
                env,
                self.context.workdir / "outage",
                max_seconds=OUTAGE_SECONDS + 60,
            )
            try:
                outage_began = fleet.started
                time.sleep(OUTAGE_SECONDS)
                zego.clear_faults()
                outage_ended, back_at = time.time(), time.monotonic()
                stats = fleet.wait()
            finally:
                zego.clear_faults()
                fleet.stop()
            calls = zego.calls()
            resumed = zego.resumed_stream_ids()
            rate_limited = zego.rate_limited_count()
        settled = self._settle(stack, bodies, resumed)
        refused = [call for call in calls if call.fault is not None]
        per_env_second = len(refused) / (OUTAGE_ENVIRONMENTS * OUTAGE_SECONDS)
        busy_seconds = sum(
            max(0.0, min(end, outage_ended) - max(start, outage_began))
            for s in stats
            for start, end in s["busy"]
        )
        busy_share = busy_seconds / (OUTAGE_ENVIRONMENTS * OUTAGE_SECONDS)
        expected = {stream_id for body in bodies for stream_id in body["streamIds"]}
        first_applied: dict[str, float] = {}
        for call in calls:
            if call.code == 0 and call.fault is None:
                for stream_id in call.applied_stream_ids:
                    first_applied.setdefault(stream_id, call.arrival)
        all_back = expected <= set(first_applied)
        recovery = (max(first_applied[i] for i in expected) - back_at) if all_back else float("inf")
        row.measured = (
            f"lost {settled['lost']}, dead-lettered {settled['deadLetters']}; "
            f"{per_env_second:.2f} calls/env/s to the dead gateway ({len(refused)} in "
            f"{OUTAGE_SECONDS:.0f} s x {OUTAGE_ENVIRONMENTS}); busy {busy_share:.0%} of the outage "
            f"({busy_seconds:.1f} s); all resumed {recovery:.1f} s after "
            f"ZEGO's return; {rate_limited} x 30002"
        )
        row.ratio = f"{per_env_second:.2f} calls/env/s; busy {busy_share:.2f}; {recovery:.1f} s"
        row.met = (
            settled["lost"] == 0
            and settled["deadLetters"] == 0
            and per_env_second <= 1.3
            and busy_share <= 0.25
            and recovery <= 12.0
        )
        row.figures = {
            "shape": shape.__dict__,
            **settled,
            "outageSeconds": OUTAGE_SECONDS,
            "callsToDeadGateway": len(refused),
            "callsPerEnvironmentPerSecond": per_env_second,
            "callsPerEnvironment": self._per_environment(stats),
            "busySeconds": busy_seconds,
            "busyShare": busy_share,
            "recoverySeconds": recovery,
            "callsAfterReturn": len(calls) - len(refused),
            "rateLimited30002": rate_limited,
            "environments": [{key: s[key] for key in s if key != "busy"} for s in stats],
            "invocations": [len(s["busy"]) for s in stats],
        }
        return row

    @staticmethod
    def _per_environment(stats: Sequence[dict[str, Any]]) -> list[int]:
        """Calls each environment wrote (its budget's turns taken), outage and recovery alike."""
        return [(s["budget"] or {}).get("taken", 0) for s in stats]

    def _brownout_row(self, shape: FleetShape) -> Row:
        row = Row(
            "outage: brownout",
            f"the same {OUTAGE_DECISIONS} decisions x 2 ids (one call each at best) while "
            f"{BROWNOUT_PROBABILITY:.0%} of ZEGO's answers are HTTP 503, until drained",
            baseline=f"at best {OUTAGE_DECISIONS} calls: 0.5 per id",
            goal="0 lost, 0 dead-lettered; calls per resumed id reported",
        )
        stack, extra, bodies = self._drill_setup(shape, "brownout")
        with ZegoEmulator(APP_ID, self.services.server_secret, rate_limit=ZEGO_RATE_LIMIT) as zego:
            zego.inject_randomly([Fault.http(503)], probability=BROWNOUT_PROBABILITY, seed=11)
            env = self.services.function_environment(zego, stack=stack, **extra)
            fleet = Environments(
                stack,
                OUTAGE_ENVIRONMENTS,
                env,
                self.context.workdir / "brownout",
                max_seconds=ENVIRONMENT_MAX_SECONDS,
            )
            try:
                stats = fleet.wait()
            finally:
                zego.clear_faults()
                fleet.stop()
            took = time.time() - fleet.started
            calls = zego.calls()
            resumed = zego.resumed_stream_ids()
            rate_limited = zego.rate_limited_count()
        settled = self._settle(stack, bodies, resumed)
        refused = sum(1 for call in calls if call.fault is not None)
        per_id = len(calls) / settled["resumed"] if settled["resumed"] else float("inf")
        row.measured = (
            f"lost {settled['lost']}, dead-lettered {settled['deadLetters']}; {len(calls)} calls "
            f"({refused} answered 503) for {settled['resumed']} ids: {per_id:.2f} calls per resumed id; "
            f"drained in {took:.1f} s; {rate_limited} x 30002"
        )
        row.ratio = f"{per_id / 0.5:.2f}x the fewest calls"
        row.met = settled["lost"] == 0 and settled["deadLetters"] == 0
        row.figures = {
            **settled,
            "calls": len(calls),
            "answered503": refused,
            "callsPerResumedId": per_id,
            "callsPerDecision": len(calls) / OUTAGE_DECISIONS,
            "seconds": took,
            "rateLimited30002": rate_limited,
            "environments": [{key: s[key] for key in s if key != "busy"} for s in stats],
            "invocations": [len(s["busy"]) for s in stats],
        }
        return row
