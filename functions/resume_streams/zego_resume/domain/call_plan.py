"""Domain: which ZEGO calls a batch of decisions needs, and which Sequence each attempt sends.

No I/O. Two rules shape the plan:

* ZEGO takes at most 20 stream ids per call and 20 calls per second, so ids are packed tightly:
  every stream id of the batch goes into exactly one call. When several decisions name the same
  stream, the call carries the newest decision (highest Sequence); an older resume of that
  stream adds nothing a newer resume does not already do, and sending both — in parallel —
  could reach ZEGO out of order.
* ZEGO ignores a request whose Sequence is not strictly greater than the last one for that stream
  within 10 s, so a retry must never repeat an earlier attempt's Sequence. Attempt `a` of a
  decision received for the `r`-th time sends::

      sequence + (r - 1) * ATTEMPTS_PER_RECEIVE + a        (0 <= a < ATTEMPTS_PER_RECEIVE)

  which rises strictly across attempts and across SQS receives, for the first
  `ORDERED_RECEIVES` receives. Later receives reuse the last offset: a decision handed back comes
  back after 2, 4, 8, 16, ... seconds (domain/outage.py), so from the fifth receive on, the
  previous receive's attempts lie more than ZEGO's 10 s window behind. A decision thus moves
  later by at most `(ORDERED_RECEIVES - 1) * ATTEMPTS_PER_RECEIVE + 7` = 39 milliseconds, however
  long it rides out an outage.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_IDS_PER_CALL = 20  # ZEGO's limit for StreamId[] in one call
# Attempts one call may make in one invocation (first try + retries). The Sequence scheme above
# depends on it: never let the retry loop exceed it.
ATTEMPTS_PER_RECEIVE = 8
# Receives whose Sequences must rise above the previous one's: those that can come within 10 s
# of it (redelivery delays 2 + 4 + 8 s; the fifth comes at least 16 s after the fourth).
ORDERED_RECEIVES = 5


def base_sequence(sequence: int, receive_count: int) -> int:
    """The Sequence of a decision's first attempt on its `receive_count`-th delivery."""
    return sequence + (min(max(receive_count, 1), ORDERED_RECEIVES) - 1) * ATTEMPTS_PER_RECEIVE


def attempt_sequence(base: int, attempt: int) -> int:
    """The Sequence of attempt number `attempt` (0-based) of a call whose base is `base`."""
    if not 0 <= attempt < ATTEMPTS_PER_RECEIVE:
        raise ValueError(f"attempt {attempt} is outside 0..{ATTEMPTS_PER_RECEIVE - 1}")
    return base + attempt


@dataclass(frozen=True)
class Decision:
    """A validated request in flight: its stream ids and the base Sequence of its calls."""

    key: str  # where its outcome goes back to: an SQS messageId, an event id, ...
    stream_ids: tuple[str, ...]
    base_sequence: int


@dataclass(frozen=True)
class PlannedCall:
    stream_ids: tuple[str, ...]
    base_sequence: int


@dataclass(frozen=True)
class CallPlan:
    calls: tuple[PlannedCall, ...]
    call_of_stream: dict[str, int]  # stream id -> index in `calls`

    def calls_for(self, decision: Decision) -> dict[int, tuple[str, ...]]:
        """The calls that carry `decision`'s stream ids, each with the ids it carries for it."""
        by_call: dict[int, list[str]] = {}
        for stream_id in decision.stream_ids:
            by_call.setdefault(self.call_of_stream[stream_id], []).append(stream_id)
        return {index: tuple(ids) for index, ids in by_call.items()}


def plan_calls(decisions: Iterable[Decision]) -> CallPlan:
    """Group the batch's stream ids by the Sequence they go out with, in calls of <= 20."""
    newest: dict[str, int] = {}
    for decision in decisions:
        for stream_id in decision.stream_ids:
            seen = newest.get(stream_id)
            if seen is None or decision.base_sequence > seen:
                newest[stream_id] = decision.base_sequence

    groups: dict[int, list[str]] = {}
    for stream_id, sequence in newest.items():
        groups.setdefault(sequence, []).append(stream_id)

    calls: list[PlannedCall] = []
    call_of_stream: dict[str, int] = {}
    for sequence, stream_ids in groups.items():
        for chunk in chunk_stream_ids(stream_ids):
            for stream_id in chunk:
                call_of_stream[stream_id] = len(calls)
            calls.append(PlannedCall(stream_ids=chunk, base_sequence=sequence))
    return CallPlan(calls=tuple(calls), call_of_stream=call_of_stream)


def chunk_stream_ids(stream_ids: Sequence[str], size: int = MAX_IDS_PER_CALL) -> list[tuple[str, ...]]:
    """Split ids into consecutive chunks of at most `size`."""
    return [tuple(stream_ids[start : start + size]) for start in range(0, len(stream_ids), size)]
