"""The benchmarks' workloads as SQS events, and the minimum number of ZEGO calls a workload needs,
worked out here from ZEGO's rules alone — never with the function's own planning code.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_IDS_PER_CALL = 20  # ZEGO: StreamId[] takes 1..20 values
MAX_IDS_PER_REQUEST = 1_000  # the function's documented cap per request
SQS_BATCH_SIZE = 10  # template.yaml: the event source mapping's BatchSize


@dataclass(frozen=True)
class Request:
    stream_ids: tuple[str, ...]
    sequence: int

    def body(self) -> str:
        return json.dumps({"streamIds": list(self.stream_ids), "sequence": self.sequence})


def stream_ids(prefix: str, count: int, start: int = 0) -> tuple[str, ...]:
    return tuple(f"{prefix}-{number:05d}" for number in range(start, start + count))


def sqs_event(requests: Iterable[Request], *, sent_timestamp: int) -> dict[str, Any]:
    """An SQS batch as Lambda delivers it, one record per request, each received once."""
    return {
        "Records": [
            {
                "messageId": f"bench-message-{index}",
                "receiptHandle": f"bench-handle-{index}",
                "body": request.body(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(sent_timestamp),
                    "SenderId": "AIDABENCH",
                    "ApproximateFirstReceiveTimestamp": str(sent_timestamp + 1),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:zego-resume",
                "awsRegion": "us-east-1",
            }
            for index, request in enumerate(requests)
        ]
    }


def full_requests(prefix: str, records: int, *, sequence: int, distinct_sequences: bool) -> list[Request]:
    """`records` requests of 1,000 distinct ids each; one shared Sequence, or one each."""
    return [
        Request(
            stream_ids(prefix, MAX_IDS_PER_REQUEST, start=record * MAX_IDS_PER_REQUEST),
            sequence + record if distinct_sequences else sequence,
        )
        for record in range(records)
    ]


def minimum_calls(requests: Iterable[Request]) -> int:
    """The fewest ZEGO calls that carry every stream with its newest decision.

    A call holds one Sequence and at most 20 ids. Each stream must go out with the newest
    Sequence any request gives it: an older one alone would let the stream's decision be ordered
    before a forbid made in between, and sending it under both Sequences only adds calls. So the
    calls for Sequence s must cover the n(s) streams whose newest Sequence is s — at least
    ceil(n(s) / 20) of them — and packing each group 20 at a time reaches that bound.
    """
    newest: dict[str, int] = {}
    for request in requests:
        for stream_id in request.stream_ids:
            newest[stream_id] = max(newest.get(stream_id, request.sequence), request.sequence)
    group_sizes: dict[int, int] = {}
    for sequence in newest.values():
        group_sizes[sequence] = group_sizes.get(sequence, 0) + 1
    return sum(math.ceil(size / MAX_IDS_PER_CALL) for size in group_sizes.values())


def distinct_ids(requests: Iterable[Request]) -> int:
    return len({stream_id for request in requests for stream_id in request.stream_ids})


@dataclass(frozen=True)
class MixedWorkload:
    requests: list[Request]  # in delivery order
    sequences: tuple[int, ...]
    crossing_streams: int  # streams named under two Sequences

    def batches(self, size: int = SQS_BATCH_SIZE) -> list[list[Request]]:
        return [self.requests[start : start + size] for start in range(0, len(self.requests), size)]


def mixed_workload(prefix: str, *, base_sequence: int, seed: int = 7) -> MixedWorkload:
    """60 small requests (1-5 ids) over 4 Sequences, 3 large ones (150, 275, 400 ids), and one
    request naming 8 streams of the oldest Sequence's pool again under the newest Sequence.

    Small requests of one Sequence draw from a pool of 40 streams, so ids repeat across requests
    of the same Sequence; each large request overlaps its Sequence's pool by 30 ids. A stream
    named under two Sequences must go out once, with the newer one (see `minimum_calls`).
    """
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not a secret
    sequences = tuple(base_sequence + 1_000 * index for index in range(4))
    pools = [stream_ids(f"{prefix}-g{index}", 40) for index in range(len(sequences))]
    requests = [
        Request(
            tuple(rng.sample(pools[group], rng.randint(1, 5))),
            sequences[group],
        )
        for group in (rng.randrange(len(sequences)) for _ in range(60))
    ]
    # Streams of the oldest Sequence's pool named again by a request of the newest one.
    crossing = pools[0][:8]
    requests.append(Request(crossing, sequences[3]))
    for group, size in zip((1, 2, 3), (150, 275, 400), strict=True):
        own = stream_ids(f"{prefix}-big{group}", size - 30)
        requests.append(Request(own + pools[group][:30], sequences[group]))
    rng.shuffle(requests)
    named_under: dict[str, set[int]] = {}
    for request in requests:
        for stream_id in request.stream_ids:
            named_under.setdefault(stream_id, set()).add(request.sequence)
    crossing_count = sum(1 for named in named_under.values() if len(named) > 1)
    return MixedWorkload(requests=requests, sequences=sequences, crossing_streams=crossing_count)


def per_batch_minimum(batches: Sequence[Sequence[Request]]) -> int:
    """The function coalesces within an invocation only: the minimum of each batch, summed."""
    return sum(minimum_calls(batch) for batch in batches)
