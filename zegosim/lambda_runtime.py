"""What Lambda does around the function and moto cannot: the SQS event source mapping (receive,
invoke with a context whose remaining time counts down, delete, honour batchItemFailures).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devkit.events import sqs_record_from_message
from zego_resume.local_context import LocalContext

from .aws import client

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class PollStats:
    invocations: int = 0
    received: int = 0
    deleted: int = 0
    reported_failed: int = 0
    whole_batch_failures: int = 0
    # (start, end) of every invocation, in time.time(): comparable across processes
    busy: list[tuple[float, float]] = field(default_factory=list)


class QueueNotDrained(AssertionError):
    """The poller ran out of time with messages still on the queue."""

    def __init__(self, queue_url: str, seconds: float, left: dict[str, int], stats: PollStats) -> None:
        counts = ", ".join(f"{count} {what}" for what, count in left.items())
        super().__init__(
            f"queue not drained after {seconds:.0f} s: {counts} left on {queue_url} "
            f"({stats.invocations} invocations, {stats.received} received, {stats.deleted} deleted, "
            f"{stats.reported_failed} handed back, {stats.whole_batch_failures} whole-batch failures)"
        )
        self.left = left


class SqsPoller:
    """Lambda's SQS event source mapping, one poller (one concurrent execution) of it."""

    def __init__(
        self,
        handler: Handler,
        queue_url: str,
        queue_arn: str,
        *,
        batch_size: int = 10,
        batching_window: float = 0.0,
        function_timeout: float = 60.0,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self._handler = handler
        self._queue_url = queue_url
        self._queue_arn = queue_arn
        self._batch_size = batch_size
        self._batching_window = batching_window
        self._function_timeout = function_timeout
        self._sqs = client("sqs", environment)
        self.stats = PollStats()

    def poll_once(self, wait_seconds: int = 0) -> int:
        """Receive one batch (gathering for up to the batching window), invoke, settle it.

        Returns the number of messages received.
        """
        messages = self._receive(wait_seconds)
        if not messages:
            return 0
        self.stats.received += len(messages)
        event = {"Records": [sqs_record_from_message(message, self._queue_arn) for message in messages]}
        self.stats.invocations += 1
        started = time.time()
        try:
            answer = self._handler(event, LocalContext(timeout_seconds=self._function_timeout))
        except Exception:
            # A raised error fails the whole batch: every message waits out its visibility timeout.
            self.stats.whole_batch_failures += 1
            return len(messages)
        finally:
            self.stats.busy.append((started, time.time()))
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        self.stats.reported_failed += len(failed)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )
        self.stats.deleted += len(done)
        return len(messages)

    def run_until_empty(self, *, idle_polls: int = 2, max_seconds: float = 120.0) -> PollStats:
        """Poll until the queue has been empty `idle_polls` times in a row: nothing received and
        nothing left on it, visible or in flight (a message handed back with a delay is still
        there).

        Raises QueueNotDrained, saying what is left on the queue, when that takes longer than
        `max_seconds`: a caller's own time limit should be well above it, so that an overrun
        shows as this error rather than as a kill."""
        idle = 0
        stop_at = time.monotonic() + max_seconds
        while idle < idle_polls:
            if time.monotonic() >= stop_at:
                raise QueueNotDrained(self._queue_url, max_seconds, self._left_on_queue(), self.stats)
            drained = self.poll_once(wait_seconds=1) == 0 and not any(self._left_on_queue().values())
            idle = idle + 1 if drained else 0
        return self.stats

    def _left_on_queue(self) -> dict[str, int]:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "in flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }

    def _receive(self, wait_seconds: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self._batching_window
        while len(messages) < self._batch_size:
            got = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, self._batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=wait_seconds if not messages else 0,
            ).get("Messages", [])
            messages.extend(got)
            if not got and time.monotonic() >= window_ends:
                break
            if not got:
                time.sleep(0.05)
        return messages


def main(argv: list[str] | None = None) -> int:
    """One execution environment of the function in a process of its own, as Lambda runs one:
    polls the queue with the real handler (its settings from this process's environment) until
    it has been empty `--idle-polls` times in a row, then writes its PollStats as JSON."""
    import argparse
    import json
    from dataclasses import asdict

    parser = argparse.ArgumentParser(prog="python -m zegosim.lambda_runtime", description=main.__doc__)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--function-timeout", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--batching-window", type=float, default=0.0, help="seconds (default 0)")
    parser.add_argument(
        "--idle-polls", type=int, default=2, help="empty receives in a row that end it (default 2)"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="give up after this long (default 300)"
    )
    parser.add_argument("--stats", help="write the poll statistics here as JSON")
    args = parser.parse_args(argv)

    import app  # the function, from its code directory on sys.path (make install puts it there)

    poller = SqsPoller(
        app.lambda_handler,
        args.queue_url,
        args.queue_arn,
        batching_window=args.batching_window,
        function_timeout=args.function_timeout,
    )
    try:
        stats = poller.run_until_empty(idle_polls=args.idle_polls, max_seconds=args.max_seconds)
        status = 0
    except QueueNotDrained as error:
        print(error, file=sys.stderr)
        stats, status = poller.stats, 1
    if args.stats:
        from zego_resume.runtime import current_budget_stats

        report = {**asdict(stats), "budget": current_budget_stats()}
        Path(args.stats).write_text(json.dumps(report))
    return status


if __name__ == "__main__":
    sys.exit(main())
