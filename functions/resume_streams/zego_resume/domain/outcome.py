"""Domain: what ZEGO's answers mean, and where each part of a decision ends up. No I/O.

The retry semantics live here and in retry.py; template.yaml mirrors them (the queue's
maxReceiveCount = MAX_RECEIVE_COUNT, the visibility timeout, the async retry policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class CodeClass(Enum):
    SUCCESS = "success"
    TRANSIENT = "transient"  # retry with back-off
    RATE_LIMITED = "rate-limited"  # retry, and slow every call down
    SIGNATURE_MISMATCH = "signature-mismatch"  # refresh the secret once, then retry
    PERMANENT = "permanent"  # retrying cannot help


RATE_LIMITED = 30002
SIGNATURE_MISMATCH = 100000005
# Every code docs/zego-api.md calls retryable (30002 and 100000005 have classes of their own).
_TRANSIENT = frozenset({30003, 42004, 100000004, 100000015})
_PERMANENT = frozenset(
    {
        30004,  # IsTest wrong: configuration
        30005,  # invalid AppId
        30006,  # invalid StreamId list
        100000001, 100000002, 100000003, 100000006, 100000007,  # malformed common parameter,
        100000008, 100000009, 100000013, 100000014,  # unknown Action, bad SignatureVersion
        100000010, 100000011,  # AppId unknown / app config missing
        100000016, 100000017,  # environment or service not enabled
    }
)  # fmt: skip


def classify_code(code: int) -> CodeClass:
    """What a ZEGO Code means for the call. Unknown codes are transient: a decision is never
    dropped on a code nobody has documented."""
    if code == 0:
        return CodeClass.SUCCESS
    if code == RATE_LIMITED:
        return CodeClass.RATE_LIMITED
    if code == SIGNATURE_MISMATCH:
        return CodeClass.SIGNATURE_MISMATCH
    if code in _PERMANENT:
        return CodeClass.PERMANENT
    return CodeClass.TRANSIENT


@dataclass(frozen=True)
class Failure:
    """Why some stream ids were not resumed. `code` is ZEGO's Code as text, or a name."""

    code: str
    message: str
    transient: bool
    zego_request_id: str | None = None
    attempts: int = 0


# Stream ids that failed, grouped by the failure that holds them.
FailedParts = tuple[tuple[Failure, tuple[str, ...]], ...]


@dataclass(frozen=True)
class DecisionOutcome:
    """Where each stream id of one decision stands after the invocation's calls."""

    resumed: tuple[str, ...] = ()
    failed: FailedParts = ()

    @property
    def has_transient(self) -> bool:
        return any(failure.transient for failure, _ in self.failed)


@dataclass(frozen=True)
class Settlement:
    """What to do with a decision: dead-letter some parts now, and/or hand it back for a retry."""

    dead_letters: FailedParts = ()
    retry: bool = False


def settle(outcome: DecisionOutcome, *, final_attempt: bool) -> Settlement:
    """Decide a decision's fate.

    * Nothing transient failed: the permanent parts are dead-lettered now; the rest succeeded.
    * Something transient failed and another attempt will come (an SQS redelivery, a Lambda async
      retry): hand the whole decision back. Its permanent parts are dead-lettered when it
      settles, so a redelivery never dead-letters the same ids twice.
    * Something transient failed on the final attempt: dead-letter every failed part with its
      reason.
    """
    if outcome.has_transient and not final_attempt:
        return Settlement(retry=True)
    return Settlement(dead_letters=_merge_by_code(outcome.failed))


def _merge_by_code(failed: FailedParts) -> FailedParts:
    # One dead letter per ErrorCode: its attributes describe every id in its body.
    merged: dict[str, tuple[Failure, list[str]]] = {}
    for failure, stream_ids in failed:
        kept = merged.setdefault(failure.code, (failure, []))
        kept[1].extend(stream_ids)
    return tuple((failure, tuple(ids)) for failure, ids in merged.values())
