"""The cost of a million resumed stream ids: the template's settings, assumed list prices, the
throughput row's measured pacing, and the log volume measured here (log_volume)."""

from __future__ import annotations

import math
import re
from typing import Any

from . import workloads
from .common import FUNCTION_DIR, ZEGO_RATE_LIMIT, BenchError, Context, Row, driver_spec, median, now_ms
from .services import ROOT


def log_volume(context: Context) -> dict[str, Any]:
    """Bytes written to CloudWatch Logs at the template's level (INFO): per invocation, and per
    decision."""
    emulator = context.services.emulator(ZEGO_RATE_LIMIT)
    emulator.set_latency(0.0)
    sizes = {}
    for decisions in (1, 10):
        requests = [
            workloads.Request(workloads.stream_ids(context.prefix("log"), 1), now_ms() + index)
            for index in range(decisions)
        ]
        spec = driver_spec("app", [FUNCTION_DIR], [workloads.sqs_event(requests, sent_timestamp=now_ms())])
        child = context.ours(spec, emulator, ZEGO_RATE_LIMIT, POWERTOOLS_LOG_LEVEL="INFO")
        sizes[decisions] = child.stdout_bytes
    per_decision = (sizes[10] - sizes[1]) / 9
    return {
        "bytesOneDecision": sizes[1],
        "bytesTenDecisions": sizes[10],
        "perDecision": per_decision,
        "perInvocation": sizes[1] - per_decision,
    }


PRICES = {  # us-east-1 list prices assumed
    "lambdaArm64PerGbSecond": 0.0000133334,
    "lambdaPerMillionRequests": 0.20,
    "sqsPerMillionRequests": 0.40,
    "secretsManagerPer10kCalls": 0.05,
    "secretsManagerPerSecretMonth": 0.40,
    "cloudWatchLogsPerGbIngested": 0.50,
}


def template_settings() -> dict[str, int]:
    text = (ROOT / "template.yaml").read_text()

    def number(pattern: str) -> int:
        match = re.search(pattern, text)
        if match is None:
            raise BenchError(f"template.yaml: {pattern!r} not found")
        return int(match.group(1))

    return {
        "memorySizeMb": number(r"\n\s+MemorySize:\s*(\d+)"),
        "batchSize": number(r"\n\s+BatchSize:\s*(\d+)"),
        "maxConcurrentInstances": number(
            r"MaxConcurrentInstances:\s*\n\s+Type: Number\s*\n\s+Default:\s*(\d+)"
        ),
        "zegoCallsPerSecond": number(r"ZegoCallsPerSecond:\s*\n\s+Type: Number\s*\n\s+Default:\s*(\d+)"),
    }


def cost_of_a_million(rows: dict[str, list[Row]], logs: dict[str, Any] | None) -> dict[str, Any] | None:
    """A million resumed stream ids, from the measured throughput: Lambda waits on the pacer, so
    its billed time is the calls divided by the per-instance rate, times the measured overhead."""
    throughput = rows.get("throughput", [None])[0]
    if throughput is None or throughput.status != "ran":
        return None
    settings = template_settings()
    gb = settings["memorySizeMb"] / 1024
    per_instance_rate = settings["zegoCallsPerSecond"] // settings["maxConcurrentInstances"]
    runs = throughput.figures["runs"]
    seconds_per_call_at_20 = median([run["seconds"] / run["calls"] for run in runs])
    overhead = seconds_per_call_at_20 * ZEGO_RATE_LIMIT  # 1.0 would be exactly 1/20 s per call
    seconds_per_call = overhead / per_instance_rate
    ids = 1_000_000
    batch = settings["batchSize"]
    scenarios = {}
    for name, ids_per_message, ids_per_call in (
        ("full: 1,000-id requests sharing a Sequence (20 ids per call)", 1000, 20),
        ("worst: one id per request, every Sequence different (1 id per call)", 1, 1),
    ):
        messages = ids / ids_per_message
        invocations = math.ceil(messages / batch)
        calls = ids / ids_per_call
        lambda_seconds = calls * seconds_per_call
        gb_seconds = lambda_seconds * gb
        sqs_requests = messages * 1 + 2 * math.ceil(messages / batch)  # send; receive + delete per batch
        wall_seconds = calls / settings["zegoCallsPerSecond"] * overhead
        secret_calls = settings["maxConcurrentInstances"] * math.ceil(
            wall_seconds / 300
        )  # one per environment per 300 s of cache
        log_bytes = (
            invocations * logs["perInvocation"] + messages * logs["perDecision"] if logs is not None else 0.0
        )
        dollars = {
            "lambdaDuration": gb_seconds * PRICES["lambdaArm64PerGbSecond"],
            "cloudWatchLogs": log_bytes / 1e9 * PRICES["cloudWatchLogsPerGbIngested"],
            "lambdaRequests": invocations / 1e6 * PRICES["lambdaPerMillionRequests"],
            "sqs": sqs_requests / 1e6 * PRICES["sqsPerMillionRequests"],
            "secretsManagerCalls": secret_calls / 1e4 * PRICES["secretsManagerPer10kCalls"],
        }
        scenarios[name] = {
            "messages": messages,
            "invocations": invocations,
            "zegoCalls": calls,
            "lambdaSeconds": lambda_seconds,
            "gbSeconds": gb_seconds,
            "sqsRequests": sqs_requests,
            "secretsManagerCalls": secret_calls,
            "logBytes": log_bytes,
            "wallClockHours": wall_seconds / 3600,
            "dollars": {key: round(value, 6) for key, value in dollars.items()},
            "totalDollars": round(sum(dollars.values()), 4),
        }
    return {
        "template": settings,
        "perInstanceCallsPerSecond": per_instance_rate,
        "measuredSecondsPerCallAt20": seconds_per_call_at_20,
        "pacingOverhead": overhead,
        "billedSecondsPerCall": seconds_per_call,
        "logVolume": logs,
        "prices": PRICES,
        "scenarios": scenarios,
    }
