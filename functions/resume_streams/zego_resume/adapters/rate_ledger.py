"""Adapter: the fleet's ZEGO budget, shared through one DynamoDB item per AppId.

The item holds `next_free`, the fleet's next free send time (integer microseconds since the
epoch): GCRA's "theoretical arrival time", with no burst. An environment reserves `count`
consecutive slots `interval` apart with one conditional UpdateItem, in one of two forms, where
`earliest` is now plus the lead, the time the answer takes to come back:

* busy — the schedule runs ahead of `earliest`: `SET next_free = next_free + count * interval`
  if `next_free >= earliest`. An atomic addition: environments that reserve at the same moment
  never conflict, they queue. The slots start at the old value.
* idle — the schedule ends before `earliest`: `SET next_free = earliest + count * interval` if
  it is missing or `< earliest`. The slots start at `earliest`.

The lead is the last request's round trip, never less than FIRST_LEAD: a slot that starts when the
request is made would have passed by the time its answer is back (a cold environment's first
request opens a connection; at 256 MB botocore alone takes milliseconds), and a call may be late
for its slot by only the send tolerance. A ledger slower than MAX_LEAD is not waited for.

A failed condition returns the item (ReturnValuesOnConditionCheckFailure), which says which form
to use next, so a reservation costs one request, two when the fleet goes idle or wakes. Slots are
never handed back: one left unused is lost, never given to another environment (that would put
two calls into one slot's place). A 30002 moves `next_free` forward for the whole fleet.

If the ledger cannot be used — the table is missing, DynamoDB throttles, is out of reach or
refuses (AccessDenied) — the environment paces alone at its own share (ZEGO_MAX_CALLS_PER_SECOND,
safe by construction when every environment falls back together, as they do for those causes),
says so once per invocation (`take_unavailability`) and tries the ledger again after
`RETRY_LEDGER_SECONDS`. No decision ever fails because of the ledger.

Written on botocore rather than taken from a library: no rate limiter on PyPI shares a schedule
through DynamoDB with this bound (docs/design.md, "One budget for the whole fleet").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zego_resume.adapters.aws_clients import after_first_client, aws_client, error_code
from zego_resume.adapters.rate_budget import HORIZON, SEND_TOLERANCE, LocalSchedule, Reservation

MAX_BATCH = 8  # slots per request: ~0.4 s of a 20 calls/s budget, 1/8 request per call at full rate
RETRY_LEDGER_SECONDS = 30.0  # after a failure, pace alone this long before asking the ledger again
FIRST_LEAD = SEND_TOLERANCE  # the least lead: usable if the answer takes up to twice it
MAX_LEAD = HORIZON  # a round trip longer than this: the ledger is too slow to wait for
_MICROS = 1_000_000
_MAX_FORM_SWITCHES = 3  # busy -> idle -> busy is possible when the fleet wakes; more is contention

logger = logging.getLogger(__name__)


class LedgerUnavailable(Exception):
    """The ledger could not be used for a reservation (the name of what went wrong)."""


class LedgerTooSlow(LedgerUnavailable):
    """The ledger answered after the slots it could give had passed."""


def _dynamodb_client() -> Any:
    # Short timeouts, one retry: a reservation is on a call's path, and pacing alone is always
    # a safe answer to a slow ledger.
    return aws_client("dynamodb", connect_timeout=0.5, read_timeout=1.0, attempts=2)


class DynamoLedger:
    """SlotSchedule over the fleet's item, falling back to `fallback` while it cannot be used."""

    max_batch = MAX_BATCH

    def __init__(
        self,
        table: str,
        interval: float,
        key: Callable[[], str],
        fallback: LocalSchedule,
        *,
        client_factory: Callable[[], Any] = _dynamodb_client,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._interval_us = round(interval * _MICROS)
        self._key = key
        self._fallback = fallback
        self._client_factory = client_factory
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._clock = clock
        self._monotonic = monotonic
        self._lead = FIRST_LEAD  # seconds: the last request's round trip, at least FIRST_LEAD
        self._lock = threading.Lock()
        # Which form to try first. After a reservation the schedule runs ahead of now, so the next
        # one, made while the environment is busy, is likely to find it so too.
        self._busy_form = False
        self._alone_until = 0.0  # a time.monotonic() value
        self._unavailable: str | None = None  # why, since it was last reported
        self.requests = 0  # DynamoDB requests made, for metrics and benchmarks

    def prepare(self) -> None:
        """Build the DynamoDB client in the background, after the environment's first client:
        ~30 ms of CPU a one-call cold start would otherwise spend after its other waits."""
        after_first_client(self._prepare)

    def reserve(self, count: int, now: float, latest: float) -> Reservation:
        if self._monotonic() < self._alone_until:
            return self._fallback.reserve(count, now, latest)
        try:
            start_us = self._reserve_shared(count * self._interval_us, now, latest)
        except Exception as error:  # botocore raises many types; each means "not reserved"
            self._pace_alone(error)
            return self._fallback.reserve(count, now, latest)
        if isinstance(start_us, _Later):
            return Reservation([], start_us.next_free / _MICROS)
        slots = [(start_us + index * self._interval_us) / _MICROS for index in range(count)]
        return Reservation(slots, (start_us + count * self._interval_us) / _MICROS)

    def delay(self, seconds: float, now: float) -> None:
        """Reserve `seconds` of the fleet's schedule for nobody (a call was written that late)."""
        self._fallback.delay(seconds, now)
        if self._monotonic() < self._alone_until:
            return
        try:
            self._reserve_shared(round(seconds * _MICROS), now, now + 86_400)
        except Exception as error:
            self._pace_alone(error)

    def push(self, until: float) -> None:
        self._fallback.push(until)
        if self._monotonic() < self._alone_until:
            return
        try:
            self._update(
                "SET next_free = :until",
                "attribute_not_exists(next_free) OR next_free < :until",
                {":until": _number(round(until * _MICROS))},
            )
        except _ConditionFailed:
            pass  # the fleet is already paused at least that long
        except Exception as error:
            self._pace_alone(error)

    def take_unavailability(self) -> str | None:
        """Why the ledger could not be used since the last call, or None: once per invocation."""
        with self._lock:
            reason, self._unavailable = self._unavailable, None
        return reason

    def _reserve_shared(self, span_us: int, now: float, latest: float) -> int | _Later:
        """Reserve `span_us` of the schedule from its next free time, or from when this request's
        answer can be back: where it starts, or _Later when that is after `latest`."""
        self._ensure_client()  # a client still being built must not use up the lead
        # A call waits at most an invocation (15 minutes at most): a day is "no limit" in practice.
        latest_us = round(min(latest, now + 86_400) * _MICROS)
        busy = self._busy_form
        for _ in range(_MAX_FORM_SWITCHES + 1):
            # Read again for each request: the one before it took its time.
            now_us = round(max(now, self._clock()) * _MICROS)
            earliest_us = min(now_us + round(self._lead * _MICROS), max(now_us, latest_us))
            values = {":span": _number(span_us), ":earliest": _number(earliest_us)}
            try:
                if busy:
                    answer = self._update(
                        "SET next_free = next_free + :span",
                        "next_free >= :earliest AND next_free <= :latest",
                        {**values, ":latest": _number(latest_us)},
                        returns="UPDATED_OLD",
                    )
                    start_us = int(answer["Attributes"]["next_free"]["N"])
                else:
                    self._update(
                        "SET next_free = :end",
                        "attribute_not_exists(next_free) OR next_free < :earliest",
                        {":end": _number(earliest_us + span_us), ":earliest": values[":earliest"]},
                    )
                    start_us = earliest_us
            except _ConditionFailed as failed:
                busy = failed.next_free is not None and failed.next_free >= earliest_us
                if busy and failed.next_free is not None and failed.next_free > latest_us:
                    self._busy_form = True
                    return _Later(failed.next_free)  # after this call's latest start
                continue
            self._busy_form = True
            return start_us
        raise LedgerUnavailable("the ledger's item kept changing under this reservation")

    def _update(
        self, expression: str, condition: str, values: dict[str, Any], *, returns: str = "NONE"
    ) -> dict[str, Any]:
        client = self._ensure_client()
        self.requests += 1
        # The error is raised outside `except`: botocore's exception is not needed, only the item.
        failed: _ConditionFailed | None = None
        sent = self._monotonic()
        try:
            answer: dict[str, Any] = client.update_item(
                TableName=self._table,
                Key={"pk": {"S": self._key()}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues=returns,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            failed = _ConditionFailed(_next_free(getattr(error, "response", {}).get("Item")))
        round_trip = self._monotonic() - sent
        if round_trip > MAX_LEAD:
            raise LedgerTooSlow(f"the ledger answered in {round_trip:.3f} s")
        # Never below the first lead: one fast answer must not leave the next, slower one (a
        # connection reopened after an idle spell) a slot that has passed when it is back.
        self._lead = max(round_trip, FIRST_LEAD)
        if failed is not None:
            raise failed
        return answer

    def _ensure_client(self) -> Any:
        with self._client_lock:  # one client, whether the preparation or a reservation is first
            if self._client is None:
                self._client = self._client_factory()
            return self._client

    def _prepare(self) -> None:
        # A client that cannot be built now is the first reservation's to report.
        with contextlib.suppress(Exception):
            self._ensure_client()

    def _pace_alone(self, error: Exception) -> None:
        with self._lock:
            self._alone_until = self._monotonic() + RETRY_LEDGER_SECONDS
            self._unavailable = error_code(error) or type(error).__name__


@dataclass(frozen=True)
class _Later:
    next_free: int  # microseconds


class _ConditionFailed(Exception):
    def __init__(self, next_free: int | None) -> None:
        super().__init__("condition failed")
        self.next_free = next_free


def _number(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _next_free(item: Any) -> int | None:
    try:
        return int(item["next_free"]["N"])
    except (KeyError, TypeError, ValueError):
        return None
