"""The whole product on one machine: `make demo`.

Starts moto (SQS, Secrets Manager, EventBridge) and the ZEGO emulator on loopback, creates the
resume queue with its DLQ, the secret and an EventBridge rule delivering moderation events to the
queue, sends a realistic mix of decisions (the events/ samples, generated ones, a few bad ones, some
meeting injected ZEGO faults), runs the real handler behind the Lambda SQS poller emulation, shows
progress, prints a summary, and shuts everything down. Exits 0 only if nothing was lost.

With --queue-url/--dlq-url/--secret-id it uses real AWS resources instead of moto (credentials and
region from the usual AWS variables); with --zego-url it calls that ZEGO host instead of the emulator.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.events import sqs_record
from devkit.template import default_fleet_shape, moderation_event_pattern
from resumectl.aws import NO_REGION, region_from
from zego_resume.domain.outcome import CodeClass, classify_code

from .aws import Stack, client, create_rate_ledger, create_stack, dead_lettered_stream_ids, drain, moto_server
from .lambda_runtime import PollStats, SqsPoller
from .zego import Fault, ZegoEmulator

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
APP_ID = 1234567890
# The rule, and the events it takes, as template.yaml's default parameters make them.
EVENT_PATTERN = moderation_event_pattern()
# The fleet as the template's defaults deploy it: its instances, each an execution environment of
# its own sharing ZEGO's budget through the rate ledger, and the network jitter it is spaced for.
FLEET = default_fleet_shape()
EVENT_SOURCE = str(EVENT_PATTERN["source"][0])
DETAIL_TYPE = str(EVENT_PATTERN["detail-type"][0])
USAGE = (
    'make demo DEMO_ARGS="[--requests N] [--fault-rate P] [--seed N] [--zego-url URL] '
    '[--queue-url URL --dlq-url URL --secret-id ID]"'
)
DEFAULT_REQUESTS = 150
MAX_REQUESTS = 5000
DEFAULT_FAULT_RATE = 0.12
MAX_FAULT_RATE = 0.5
DEFAULT_SEED = 7
SAMPLE_WIDTH = 70
# Short timings so the redrive path shows within the demo; template.yaml has the production ones.
FUNCTION_TIMEOUT = 4.0
VISIBILITY_TIMEOUT = 3
MAX_RECEIVE_COUNT = 3
# Transient faults for about one call in eight. 30002 is left out: the emulator's real rate limit
# answers it whenever the pacing were wrong, which is the point of showing zero.
RANDOM_FAULTS = (
    Fault.of_code(30003),
    Fault.of_code(42004),
    Fault.of_code(100000015),
    Fault.http(503),
    Fault.dropped(),
    Fault.garbage(),
    Fault.slow(1.5, apply=False),
)
BAD_BODIES = (
    "not json at all",
    json.dumps([1, 2, 3]),
    json.dumps({"streamIds": []}),
    json.dumps({"streamIds": ["has space"]}),
    json.dumps({"streamIds": ["semi;colon&Sequence=1"]}),
    json.dumps({"streamIds": ["ok-id"], "sequence": -5}),
    json.dumps({"version": "0", "detail-type": DETAIL_TYPE, "source": EVENT_SOURCE}),
)


@dataclass
class Decisions:
    """What the demo sent, to account for every stream id at the end."""

    stream_ids: set[str] = field(default_factory=set)
    messages: int = 0
    bad: int = 0
    via_eventbridge: int = 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
    started = time.monotonic()
    with ExitStack() as stack:
        env, aws = _aws(args, stack)
        zego_url, zego = _zego(args, env, aws.secret_id, stack)
        # A directory of this run's own: runs side by side never write into each other's log.
        log_path = Path(tempfile.mkdtemp(prefix="zego-resume-demo-")) / "function.log"
        function_log = stack.enter_context(log_path.open("w"))
        say(f"function log: {log_path}")
        handler = _load_function(
            aws.function_environment(
                zego_url, ZEGO_READ_TIMEOUT_SECONDS="1", **_fleet_environment(args, env)
            ),
            env,
            function_log,
        )

        say(f"local stack up: moto {env.get('AWS_ENDPOINT_URL', 'AWS')}, ZEGO {zego_url}")
        rng = random.Random(args.seed)
        sent = _send_decisions(aws, env, rng, args.requests, zego, faults=args.fault_rate > 0)
        say(
            f"sent {sent.messages} decisions ({sent.via_eventbridge} through EventBridge, {sent.bad} bad) "
            f"naming {len(sent.stream_ids)} stream ids"
        )
        if zego is not None:
            zego.inject_randomly(RANDOM_FAULTS, probability=args.fault_rate, seed=args.seed)

        say(
            f"the fleet: {FLEET.max_concurrent_instances} instances sharing {FLEET.fleet_calls_per_second} "
            f"ZEGO calls/s through the rate ledger; ZEGO's network jitter up to {FLEET.arrival_jitter_ms} ms"
        )
        pollers = [
            SqsPoller(
                instance_handler,
                aws.queue_url,
                aws.queue_arn,
                batch_size=10,
                batching_window=0.2,
                function_timeout=FUNCTION_TIMEOUT,
                environment=env,
            )
            for instance_handler in [handler, *_more_instances(FLEET.max_concurrent_instances - 1)]
        ]
        _run(pollers, aws, env, zego, started, function_log)
        return _summarise(sent, aws, env, zego, _total(pollers), started, log_path)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo", usage=USAGE, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        metavar="N",
        help=f"generated decisions, 1..{MAX_REQUESTS} (default {DEFAULT_REQUESTS}); the events/ samples "
        "and a few bad ones come on top",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=DEFAULT_FAULT_RATE,
        metavar="P",
        help=f"share of ZEGO calls given a transient fault, 0..{MAX_FAULT_RATE} (default "
        f"{DEFAULT_FAULT_RATE}); 0 also leaves out the stream whose calls always fail",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"seed of every draw (default {DEFAULT_SEED})",
    )
    real = parser.add_argument_group(
        "real AWS instead of moto (all three together; region: AWS_REGION or AWS_DEFAULT_REGION)"
    )
    real.add_argument("--queue-url", metavar="URL", help="the resume queue")
    real.add_argument("--dlq-url", metavar="URL", help="its dead-letter queue")
    real.add_argument("--secret-id", metavar="ID", help="the ZEGO secret")
    parser.add_argument(
        "--zego-url", metavar="URL", help="a real ZEGO host instead of the emulator (no faults then)"
    )
    args = parser.parse_args(argv)
    chosen = [args.queue_url, args.dlq_url, args.secret_id]
    if any(chosen) and not all(chosen):
        parser.error("--queue-url, --dlq-url and --secret-id go together")
    if args.queue_url and not (region_from(os.environ) or _profile_region()):
        parser.error(NO_REGION)
    if not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be within 1..{MAX_REQUESTS}")
    if not 0 <= args.fault_rate <= MAX_FAULT_RATE:
        parser.error(f"--fault-rate must be within 0..{MAX_FAULT_RATE}")
    return args


def _profile_region() -> str | None:
    import boto3

    region = boto3.session.Session().region_name
    return str(region) if region else None


def _aws(args: argparse.Namespace, stack: ExitStack) -> tuple[dict[str, str], Stack]:
    if args.queue_url:
        env = dict(os.environ)
        env.setdefault("AWS_REGION", region_from(env) or _profile_region() or "")
        sqs = client("sqs", env)
        arns = [
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for url in (args.queue_url, args.dlq_url)
        ]
        return env, Stack(args.secret_id, args.queue_url, arns[0], args.dlq_url, arns[1], MAX_RECEIVE_COUNT)
    moto = stack.enter_context(moto_server())
    env = moto.environment()
    aws = create_stack(
        app_id=APP_ID,
        server_secret=secrets.token_hex(16),
        environment=env,
        name="zego-resume-demo",
        max_receive_count=MAX_RECEIVE_COUNT,
        visibility_timeout=VISIBILITY_TIMEOUT,
    )
    events = client("events", env)
    events.put_rule(
        Name="zego-resume-demo-decisions",
        EventPattern=json.dumps(EVENT_PATTERN),
    )
    events.put_targets(Rule="zego-resume-demo-decisions", Targets=[{"Id": "queue", "Arn": aws.queue_arn}])
    return env, aws


def _zego(
    args: argparse.Namespace, env: dict[str, str], secret_id: str, stack: ExitStack
) -> tuple[str, ZegoEmulator | None]:
    if args.zego_url:
        return args.zego_url, None
    secret = json.loads(client("secretsmanager", env).get_secret_value(SecretId=secret_id)["SecretString"])
    zego = stack.enter_context(
        ZegoEmulator(
            int(secret["AppId"]),
            secret["ServerSecret"],
            latency=0.15,
            network_jitter=FLEET.arrival_jitter_ms / 1000,
            jitter_seed=7,
        )
    )
    return zego.base_url, zego


def _load_function(function_env: dict[str, str], env: dict[str, str], log: io.TextIOBase) -> Any:
    """Import the real handler with its environment, its logs going to `log`."""
    os.environ.update(env)
    os.environ.update(function_env)
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "zego-stream-resume")
    import app
    from zego_resume.observability import logger

    logger.registered_handler.setStream(log)  # type: ignore[attr-defined]

    def handler(event: dict[str, Any], context: Any) -> Any:
        return app.lambda_handler(event, context)  # EMF metrics are printed: _run redirects them

    return handler


def _send_decisions(
    aws: Stack,
    env: dict[str, str],
    rng: random.Random,
    count: int,
    zego: ZegoEmulator | None,
    *,
    faults: bool,
) -> Decisions:
    sqs = client("sqs", env)
    events = client("events", env)
    sent = Decisions()
    bodies = [
        record["body"]
        for name in ("sqs-batch.json", "sqs-eventbridge-envelopes.json", "sqs-mixed-batch.json")
        for record in json.loads((EVENTS / name).read_text())["Records"]
    ]
    bodies.append((EVENTS / "direct-request.json").read_text())
    bodies.extend(BAD_BODIES)
    # Each of these two has a Sequence no other decision has, so it always goes in a call of its
    # own. Without one it takes its SentTimestamp, which a decision sent in the same millisecond
    # shares: the two would go in one call, and ZEGO's answer would be both streams'.
    if zego is not None:  # ZEGO refuses one stream for good: dead-lettered at once, never retried
        refused = {"streamIds": ["refused-by-zego"], "sequence": 1764409999001, "requestId": "case-refused"}
        bodies.append(json.dumps(refused))
        zego.inject_for_stream("refused-by-zego", Fault.of_code(30006))
    if zego is not None and faults:  # and one meets transient faults that outlast every retry
        unlucky = {
            "streamIds": ["zego-keeps-failing"],
            "sequence": 1764409999002,
            "requestId": "case-unlucky",
        }
        bodies.append(json.dumps(unlucky))
        zego.inject_for_stream("zego-keeps-failing", Fault.of_code(42004))
    details = [json.loads((EVENTS / "eventbridge-event.json").read_text())["detail"]]

    # Moderation sweeps decide many streams at once: requests share a sweep's timestamp.
    sweeps = [1764410000000 + 1000 * n for n in range(max(1, count // 4))]
    for number in range(count):
        request = {
            "streamIds": [f"live-{number:05d}-{n:02d}" for n in range(rng.randint(1, 40))],
            "sequence": rng.choice(sweeps),
            "reason": rng.choice(["appeal granted", "timed ban ended", "false positive"]),
            "requestId": f"case-{number:05d}",
        }
        if number % 10 == 0:
            details.append(request)
        else:
            bodies.append(json.dumps(request))
    rng.shuffle(bodies)

    for body in bodies:
        _account(sent, body)
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=aws.queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])
            ],
        )
    for detail in details:
        _account(sent, json.dumps(detail))
        _put_event(events, detail)
        sent.via_eventbridge += 1
    return sent


def _account(sent: Decisions, body: str) -> None:
    """Count a decision, and the stream ids the function must settle, by the function's own rules."""
    from zego_resume.event_shapes import read_event

    [delivery] = read_event({"Records": [sqs_record(body)]}, invocation_id="-")
    sent.messages += 1
    if delivery.request is None:
        sent.bad += 1
    else:
        sent.stream_ids.update(delivery.request.stream_ids)


def _put_event(events: Any, detail: dict[str, Any]) -> None:
    answer = events.put_events(
        Entries=[{"Source": EVENT_SOURCE, "DetailType": DETAIL_TYPE, "Detail": json.dumps(detail)}]
    )
    if answer.get("FailedEntryCount"):
        raise RuntimeError("EventBridge refused an event")


def _run(
    pollers: list[SqsPoller],
    aws: Stack,
    env: dict[str, str],
    zego: ZegoEmulator | None,
    started: float,
    log: Any,
) -> None:
    """Every instance polls in a thread of its own until the queue has settled (120 s at most)."""
    sqs = client("sqs", env)
    deadline = time.monotonic() + 120
    done = threading.Event()

    def poll(poller: SqsPoller) -> None:
        while not done.is_set() and time.monotonic() < deadline:
            poller.poll_once(wait_seconds=1)

    threads = [threading.Thread(target=poll, args=(poller,), daemon=True) for poller in pollers]
    # The function prints its EMF metrics: into its log, for as long as any instance runs (stdout
    # is redirected for the whole process, once, not per invocation: the instances run at once).
    with redirect_stdout(log):
        for thread in threads:
            thread.start()
        shown: tuple[int, ...] | None = None
        while time.monotonic() < deadline:
            time.sleep(0.5)
            shown = _progress(_total(pollers), zego, started, shown)
            if _queue_settled(sqs, aws.queue_url):
                break
        done.set()
        for thread in threads:
            thread.join(timeout=FUNCTION_TIMEOUT + 5)
    if sys.stderr.isatty():
        print(file=sys.stderr)  # end the line the progress rewrote


def _total(pollers: list[SqsPoller]) -> PollStats:
    """The whole fleet's counts (for the progress line and the summary)."""
    total = PollStats()
    for poller in pollers:
        total.invocations += poller.stats.invocations
        total.received += poller.stats.received
        total.deleted += poller.stats.deleted
        total.reported_failed += poller.stats.reported_failed
        total.whole_batch_failures += poller.stats.whole_batch_failures
    return total


def _fleet_environment(args: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """The template's fleet variables; on the local stack, a rate ledger of its own."""
    variables = {
        "ZEGO_FLEET_CALLS_PER_SECOND": str(FLEET.fleet_calls_per_second),
        "ZEGO_MAX_CALLS_PER_SECOND": str(FLEET.per_instance_calls_per_second),
        "ZEGO_ARRIVAL_JITTER_MS": str(FLEET.arrival_jitter_ms),
    }
    if not args.queue_url:
        variables["ZEGO_RATE_LEDGER_TABLE"] = create_rate_ledger("zego-resume-demo-rate-ledger", env)
    return variables


def _more_instances(count: int) -> list[Any]:
    """Handlers of `count` more execution environments: each its own runtime (rate budget, ZEGO
    connections, outage state), as Lambda's instances are, in this process."""
    from zego_resume.config import Settings
    from zego_resume.dispatch import handle_event
    from zego_resume.runtime import Runtime

    def handler_of(runtime: Runtime) -> Any:
        return lambda event, context: handle_event(event, context, runtime)

    return [handler_of(Runtime.from_settings(Settings.from_environ(os.environ))) for _ in range(count)]


def _queue_settled(sqs: Any, queue_url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def _progress(
    stats: PollStats, zego: ZegoEmulator | None, started: float, shown: tuple[int, ...] | None
) -> tuple[int, ...]:
    """A progress line when something changed since the line `shown` (never just because time
    passed); returns what the line shows."""
    counts: tuple[int, ...] = (stats.invocations, stats.received, stats.deleted, stats.reported_failed)
    if zego is not None:
        counts += (len(zego.calls()), len(zego.resumed_stream_ids()))
    if counts == shown:
        return counts
    zego_part = ""
    if zego is not None:
        zego_part = f" | ZEGO calls {counts[4]:4d}, streams resumed {counts[5]:5d}"
    line = (
        f"[{time.monotonic() - started:5.1f}s] invocations {stats.invocations:3d} | "
        f"received {stats.received:4d} | done {stats.deleted:4d} | handed back {stats.reported_failed:3d}"
        + zego_part
    )
    end = "\r" if sys.stderr.isatty() else "\n"
    print(line, end=end, file=sys.stderr, flush=True)
    return counts


@dataclass(frozen=True)
class CallCounts:
    """ZEGO calls by what their answer meant to the function (zego_resume.domain.outcome)."""

    succeeded: int
    retried: int  # transient faults, answers that were not ZEGO's JSON, signature refreshes
    rate_limited: int  # 30002: retried, after slowing down
    refused: int  # permanent codes (30006, ...): dead-lettered at once, never retried

    @classmethod
    def of(cls, codes: list[int | None]) -> CallCounts:
        classes = Counter(CodeClass.TRANSIENT if code is None else classify_code(code) for code in codes)
        return cls(
            succeeded=classes[CodeClass.SUCCESS],
            retried=classes[CodeClass.TRANSIENT] + classes[CodeClass.SIGNATURE_MISMATCH],
            rate_limited=classes[CodeClass.RATE_LIMITED],
            refused=classes[CodeClass.PERMANENT],
        )


def _summarise(
    sent: Decisions,
    aws: Stack,
    env: dict[str, str],
    zego: ZegoEmulator | None,
    stats: PollStats,
    started: float,
    log_path: Path,
) -> int:
    letters = drain(aws.dead_letter_queue_url, env)
    by_reason: Counter[str] = Counter()
    samples: dict[str, str] = {}
    for letter in letters:
        attributes = letter["attributes"]
        reason = attributes.get("ErrorCode", "?")
        if attributes.get("ErrorReason"):
            reason += f" / {attributes['ErrorReason']}"
        by_reason[reason] += 1
        samples.setdefault(reason, attributes.get("ErrorMessage", ""))
    dead_lettered_ids = set(dead_lettered_stream_ids(letters))

    out = sys.stdout
    print("\nSummary", file=out)
    print(
        f"  decisions sent          {sent.messages} ({sent.bad} bad, {sent.via_eventbridge} via EventBridge)",
        file=out,
    )
    lost: set[str] = set()
    if zego is not None:
        # Every stream id named ends up in exactly one place; one resumed by another decision
        # counts as resumed even if a decision naming it was dead-lettered.
        resumed = zego.resumed_stream_ids() & sent.stream_ids
        dead_lettered = (dead_lettered_ids & sent.stream_ids) - resumed
        lost = sent.stream_ids - resumed - dead_lettered
        print(
            f"  stream ids named        {len(sent.stream_ids)} = {len(resumed)} resumed "
            f"+ {len(dead_lettered)} dead-lettered + {len(lost)} lost",
            file=out,
        )
        calls = CallCounts.of([call.code for call in zego.calls()])
        print(f"  ZEGO calls              {len(zego.calls())} =", file=out)
        print(f"    {calls.succeeded:5d}  succeeded", file=out)
        print(f"    {calls.retried:5d}  transient fault (retried)", file=out)
        print(f"    {calls.rate_limited:5d}  rate-limited, 30002 (retried)", file=out)
        print(f"    {calls.refused:5d}  permanently refused (dead-lettered, never retried)", file=out)
        print(f"  busiest second          {zego.max_calls_in_any_window()} calls", file=out)
        print(f"  stale Sequence seen     {len(zego.stale())}", file=out)
    else:
        print(
            f"  stream ids named        {len(sent.stream_ids)} "
            f"({len(dead_lettered_ids & sent.stream_ids)} dead-lettered; a real ZEGO host does not "
            "say which it resumed)",
            file=out,
        )
    print(
        f"  Lambda invocations      {stats.invocations} "
        f"({stats.reported_failed} messages handed back for redelivery)",
        file=out,
    )
    print(f"  dead-lettered messages  {len(letters)}", file=out)
    for reason, count in sorted(by_reason.items()):
        print(f"    {count:3d}  {reason:44s} e.g. {shorten(samples[reason], SAMPLE_WIDTH)}", file=out)
    print(f"  took {time.monotonic() - started:.1f}s; function log: {log_path}", file=out)
    return 1 if lost else 0


def shorten(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters, cut at a word boundary with "…"."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:") + "…"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
