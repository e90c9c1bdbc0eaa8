"""The fleet's rate ledger on a fake DynamoDB table and fake clocks: reservations in one request,
environments that contend, slots never handed out twice, clocks that disagree, a 30002 that
pauses the fleet, and a ledger in trouble that never stops work."""

from __future__ import annotations

import bisect
import itertools
import threading
from typing import Any

import pytest

from zego_resume.adapters.rate_budget import (
    CLOCK_ERROR,
    SEND_TOLERANCE,
    WINDOW_SECONDS,
    LocalSchedule,
    SlotDispenser,
    slot_interval,
)
from zego_resume.adapters.rate_ledger import (
    FIRST_LEAD,
    MAX_BATCH,
    MAX_LEAD,
    RETRY_LEDGER_SECONDS,
    DynamoLedger,
)

from .fakes import FakeClock, FakeSleep

FLEET = 20
SHARE = 10
JITTER = 0.040
INTERVAL = slot_interval(FLEET, JITTER)
KEY = "zego-rate#1234567890"


class ClientError(Exception):
    """botocore's ClientError, as far as the ledger reads it: a `response` with an error code."""

    def __init__(self, code: str, item: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.response: dict[str, Any] = {"Error": {"Code": code}}
        if item is not None:
            self.response["Item"] = item


class FakeTable:
    """DynamoDB's UpdateItem for the ledger's three expressions, atomic like the real one, with
    ReturnValuesOnConditionCheckFailure. Fails with `error` (a code) when one is set. With
    `clocks`, each request takes `latency` of them: half before the item is read, half after."""

    def __init__(self, *clocks: FakeClock) -> None:
        self.items: dict[str, int] = {}
        self.requests = 0
        self.error: str | None = None
        self.latency = 0.0
        self._clocks = clocks
        self._lock = threading.Lock()

    def _travel(self) -> None:
        for clock in self._clocks:
            clock.advance(self.latency / 2)

    def update_item(self, **request: Any) -> dict[str, Any]:
        self._travel()
        try:
            return self._update_item(**request)
        finally:
            self._travel()

    def _update_item(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            self.requests += 1
            if self.error is not None:
                raise ClientError(self.error)
            key = request["Key"]["pk"]["S"]
            values = {name: int(value["N"]) for name, value in request["ExpressionAttributeValues"].items()}
            current = self.items.get(key)
            old = None if current is None else {"next_free": {"N": str(current)}}
            expression, condition = request["UpdateExpression"], request["ConditionExpression"]
            if condition == "next_free >= :earliest AND next_free <= :latest":
                holds = current is not None and values[":earliest"] <= current <= values[":latest"]
            elif condition == "attribute_not_exists(next_free) OR next_free < :earliest":
                holds = current is None or current < values[":earliest"]
            elif condition == "attribute_not_exists(next_free) OR next_free < :until":
                holds = current is None or current < values[":until"]
            else:
                raise AssertionError(f"unexpected condition {condition}")
            if not holds:
                assert request["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
                raise ClientError("ConditionalCheckFailedException", old)
            if expression == "SET next_free = next_free + :span":
                assert current is not None
                self.items[key] = current + values[":span"]
            elif expression == "SET next_free = :end":
                self.items[key] = values[":end"]
            elif expression == "SET next_free = :until":
                self.items[key] = values[":until"]
            else:
                raise AssertionError(f"unexpected update {expression}")
            return {"Attributes": old} if request["ReturnValues"] == "UPDATED_OLD" and old else {}


class Environment:
    """One execution environment: its ledger over the shared table, its fallback, its clocks.
    `offset` is how far its wall clock is off the true time."""

    def __init__(self, table: FakeTable, clock: FakeClock, *, offset: float = 0.0) -> None:
        self.true_clock = clock
        self.offset = offset
        self.monotonic = FakeClock(50.0)
        self.fallback = LocalSchedule(slot_interval(SHARE, JITTER))
        self.ledger = DynamoLedger(
            "ledger",
            INTERVAL,
            key=lambda: KEY,
            fallback=self.fallback,
            client_factory=lambda: table,
            clock=self.now,
            monotonic=self.monotonic,
        )

    def now(self) -> float:
        return self.true_clock() + self.offset

    def reserve(self, count: int, latest: float = float("inf")) -> list[float]:
        return self.ledger.reserve(count, self.now(), latest).slots


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_764_410_000.0)


def _most_in_any_window(times: list[float]) -> int:
    ordered = sorted(times)
    return max(
        bisect.bisect_left(ordered, start + WINDOW_SECONDS) - index for index, start in enumerate(ordered)
    )


def test_an_idle_fleet_gives_slots_from_the_first_lead_in_one_request(
    table: FakeTable, clock: FakeClock
) -> None:
    env = Environment(table, clock)
    asked_at = clock()
    slots = env.reserve(MAX_BATCH)
    assert slots[0] == pytest.approx(asked_at + FIRST_LEAD, abs=1e-6)
    assert [b - a for a, b in itertools.pairwise(slots)] == pytest.approx(
        [INTERVAL] * (MAX_BATCH - 1), abs=1e-6
    )
    assert table.requests == 1


def test_a_busy_fleet_queues_reservations_without_conflict(table: FakeTable, clock: FakeClock) -> None:
    # Given one environment that reserved a batch
    first, second = Environment(table, clock), Environment(table, clock)
    a = first.reserve(4)
    requests_before = table.requests
    # When another reserves at the same moment
    b = second.reserve(4)
    # Then its slots follow on, and it took one request (after one that told it the fleet is busy)
    assert b[0] == pytest.approx(a[-1] + INTERVAL, abs=1e-6)
    assert table.requests - requests_before <= 2
    c = second.reserve(4)
    assert table.requests - requests_before <= 3  # it now knows to use the busy form
    assert c[0] == pytest.approx(b[-1] + INTERVAL, abs=1e-6)


def test_environments_reserving_in_any_order_never_share_or_squeeze_a_slot(
    table: FakeTable, clock: FakeClock
) -> None:
    # Given four environments reserving batches of various sizes while time passes
    envs = [Environment(table, clock) for _ in range(4)]
    slots: list[float] = []
    for step in range(200):
        env = envs[(step * 7) % 4]
        slots += env.reserve(1 + step % MAX_BATCH)
        clock.advance(0.013 * (step % 5))
    # Then no two slots are closer than the interval, so no sliding second holds more than the
    # budget even when each call reaches ZEGO up to the jitter late
    ordered = sorted(slots)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= INTERVAL - 1e-6
    arrivals = [slot + (JITTER if n % 2 else 0.0) for n, slot in enumerate(ordered)]
    assert _most_in_any_window(arrivals) <= FLEET


def test_threads_of_several_environments_reserving_at_once_never_share_a_slot(
    table: FakeTable, clock: FakeClock
) -> None:
    envs = [Environment(table, clock) for _ in range(4)]
    slots: list[float] = []
    lock = threading.Lock()

    def reserve_many(env: Environment) -> None:
        for _ in range(50):
            got = env.reserve(3)
            with lock:
                slots.extend(got)

    threads = [threading.Thread(target=reserve_many, args=(env,)) for env in envs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    ordered = sorted(slots)
    assert len(ordered) == 4 * 50 * 3
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= INTERVAL - 1e-6


def test_slots_left_unused_are_lost_not_handed_to_another_environment(
    table: FakeTable, clock: FakeClock
) -> None:
    first, second = Environment(table, clock), Environment(table, clock)
    unused = first.reserve(MAX_BATCH)  # never used: the environment crashed, say
    taken = second.reserve(1)
    assert taken[0] >= unused[-1] + INTERVAL - 1e-6


def test_clocks_that_disagree_by_the_clock_error_keep_the_bound(table: FakeTable, clock: FakeClock) -> None:
    # Given two environments whose clocks are off by +/- CLOCK_ERROR, each writing at its slot by
    # its own clock (so, in true time, up to CLOCK_ERROR early or late)
    fast, slow = Environment(table, clock, offset=CLOCK_ERROR), Environment(table, clock, offset=-CLOCK_ERROR)
    written: list[float] = []
    for step in range(300):
        env = fast if step % 3 else slow
        written += [slot - env.offset for slot in env.reserve(1 + step % 3)]
        clock.advance(0.02)
    # Then, in true time, with each arrival late by up to the jitter and the send tolerance, no
    # sliding second at ZEGO holds more than the budget
    ordered = sorted(written)
    late = JITTER + SEND_TOLERANCE
    arrivals = [t + (late if n % 2 else 0.0) for n, t in enumerate(ordered)]
    assert _most_in_any_window(arrivals) <= FLEET


def test_a_30002_pushes_the_fleets_next_free_slot(table: FakeTable, clock: FakeClock) -> None:
    first, second = Environment(table, clock), Environment(table, clock)
    first.reserve(2)
    first.ledger.push(clock() + 1.0)
    assert second.reserve(1)[0] >= clock() + 1.0 - 1e-6
    # ... and a push never pulls the schedule back
    first.ledger.push(clock() + 0.1)
    assert first.reserve(1)[0] >= clock() + 1.0


def test_a_slot_after_the_latest_start_is_refused_without_reserving(
    table: FakeTable, clock: FakeClock
) -> None:
    first, second = Environment(table, clock), Environment(table, clock)
    first.reserve(MAX_BATCH)  # the fleet is booked ~0.4 s ahead
    before = dict(table.items)
    assert second.reserve(1, latest=clock() + 0.1) == []
    assert table.items == before


@pytest.mark.parametrize(
    "error",
    [
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
    ],
)
def test_a_ledger_in_trouble_paces_alone_at_the_share_says_so_once_and_tries_again_later(
    table: FakeTable, clock: FakeClock, error: str
) -> None:
    # Given a ledger that answers with an error
    env = Environment(table, clock)
    table.error = error
    # When the environment reserves
    slots = env.reserve(MAX_BATCH)
    # Then it still gets slots, from its own share's schedule, and the reason is reported once
    assert len(slots) == MAX_BATCH
    assert slots[1] - slots[0] == pytest.approx(slot_interval(SHARE, JITTER), abs=1e-6)
    assert env.ledger.take_unavailability() == error
    assert env.ledger.take_unavailability() is None
    # ... and it does not ask the ledger again until the retry time has passed
    requests = table.requests
    table.error = None
    env.reserve(1)
    assert table.requests == requests
    env.monotonic.advance(RETRY_LEDGER_SECONDS + 1)
    clock.advance(RETRY_LEDGER_SECONDS + 1)
    env.reserve(1)
    assert table.requests > requests
    assert env.ledger.take_unavailability() is None


def test_a_ledger_out_of_reach_never_stops_a_call(table: FakeTable, clock: FakeClock) -> None:
    class Unreachable:
        def update_item(self, **request: Any) -> dict[str, Any]:
            raise ConnectionError("EndpointConnectionError")

    env = Environment(table, clock)
    env.ledger = DynamoLedger(
        "ledger", INTERVAL, key=lambda: KEY, fallback=env.fallback, client_factory=Unreachable
    )
    dispenser = SlotDispenser(env.ledger, clock=clock, monotonic=clock, sleep=FakeSleep(clock))
    assert dispenser.turn(float("inf"))()
    assert dispenser.take_report().ledger_unavailable == "ConnectionError"


def test_the_dispenser_reserves_a_batch_for_the_calls_it_expects(table: FakeTable, clock: FakeClock) -> None:
    env = Environment(table, clock)
    dispenser = SlotDispenser(env.ledger, clock=clock, monotonic=clock, sleep=FakeSleep(clock))
    dispenser.expect(16)
    for _ in range(16):
        assert dispenser.turn(float("inf"))()
    assert table.requests == 16 / MAX_BATCH  # DynamoDB requests per call at full rate: 1/8


# --- slots that are still ahead when the answer is back -------------------------------------------


class Cold:
    """One environment's dispenser over the ledger, with a table whose requests take time and a
    client that takes `build` seconds to make (botocore's, on a cold start)."""

    def __init__(self, table: FakeTable, clock: FakeClock, *, build: float = 0.0) -> None:
        self.table = table

        def factory() -> FakeTable:
            clock.advance(build)
            return table

        self.ledger = DynamoLedger(
            "ledger",
            INTERVAL,
            key=lambda: KEY,
            fallback=LocalSchedule(INTERVAL),
            client_factory=factory,
            clock=clock,
            monotonic=clock,
        )
        self.dispenser = SlotDispenser(self.ledger, clock=clock, monotonic=clock, sleep=FakeSleep(clock))

    def call(self) -> None:
        assert self.dispenser.turn(float("inf"))()

    @property
    def wasted(self) -> int:
        """Slots reserved and not used: given up (missed), or passed before a call asked (lost)."""
        return self.dispenser.stats.missed + self.dispenser.stats.lost


def test_a_first_reservation_slower_than_the_tolerance_still_gives_its_call_the_slot(
    clock: FakeClock,
) -> None:
    # Given a cold environment: its DynamoDB client takes 80 ms to build, its first request 25 ms
    # (a new connection), more than a call may be late for its slot
    table = FakeTable(clock)
    table.latency = 0.025
    env = Cold(table, clock, build=0.080)
    # When its first call takes a turn on an idle fleet
    env.call()
    # Then the slot it reserved was still ahead when the answer came back: one request, no slot
    # lost to the request's own time, and no second reservation
    assert table.requests == 1
    assert env.wasted == 0
    assert env.dispenser.stats.taken == 1


def test_the_lead_learns_the_ledgers_round_trip(clock: FakeClock) -> None:
    # Given a ledger whose requests take 60 ms, four times the tolerance
    table = FakeTable(clock)
    table.latency = 0.060
    env = Cold(table, clock)
    env.call()  # the first lead is too short for it: that slot is lost, once
    assert env.wasted == 1
    # When the fleet goes idle and wakes up again and again
    for _ in range(5):
        clock.advance(2.0)
        env.call()
    # Then every later reservation starts far enough ahead for its answer
    assert env.wasted == 1
    assert env.dispenser.stats.taken == 6


def test_a_fast_round_trip_does_not_shorten_the_lead_below_the_first(clock: FakeClock) -> None:
    # Given an environment whose ledger answered in 2 ms, and a fleet booked until 5 ms from now
    table = FakeTable(clock)
    table.latency = 0.002
    warm, other = Cold(table, clock), Cold(table, clock)
    warm.call()
    clock.advance(2.0)
    other.call()
    clock.advance(table.items[KEY] / 1_000_000 - clock() - 0.005)
    # When its next request takes 25 ms (a pooled connection closed while idle, say)
    table.latency = 0.025
    warm.call()
    # Then the booking's end, 5 ms ahead, was not taken as its slot (it would have passed by the
    # time the answer came back): no slot given up
    assert warm.wasted == 0
    assert warm.dispenser.stats.taken == 2


def test_a_ledger_slower_than_the_longest_lead_is_not_waited_for(clock: FakeClock) -> None:
    # Given a ledger whose answer comes back later than any slot it could give would still be
    # usable (a request that nearly timed out)
    table = FakeTable(clock)
    table.latency = MAX_LEAD + 0.1
    env = Cold(table, clock)
    # When a call takes a turn
    env.call()
    # Then it went out on the environment's own schedule after one request, and the reason is
    # reported, as for a ledger out of reach
    assert table.requests == 1
    assert env.dispenser.stats.taken == 1
    assert env.ledger.take_unavailability() == "LedgerTooSlow"


def test_a_schedule_ending_within_the_lead_is_taken_as_idle(clock: FakeClock) -> None:
    # Given a fleet whose booked slots end 5 ms from now
    table = FakeTable(clock)
    first, second = Cold(table, clock), Cold(table, clock)
    first.call()
    booked_until = table.items[KEY] / 1_000_000
    clock.advance(booked_until - clock() - 0.005)
    # When another environment, whose requests take 25 ms, reserves
    table.latency = 0.025
    requests = table.requests
    second.call()
    # Then its slot starts after its answer can be back, not at the end of the booking (which
    # would have passed by then): taken, none lost, at most two requests (busy, then idle)
    assert second.wasted == 0
    assert table.requests - requests <= 2


# --- the client, prepared in the background -------------------------------------------------------


def test_the_client_prepared_in_the_background_is_the_one_reservations_use(
    table: FakeTable, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zego_resume.adapters import rate_ledger

    monkeypatch.setattr(rate_ledger, "after_first_client", lambda build, **_: build())
    built: list[FakeTable] = []

    def factory() -> FakeTable:
        built.append(table)
        return table

    ledger = DynamoLedger(
        "ledger", INTERVAL, key=lambda: KEY, fallback=LocalSchedule(INTERVAL), client_factory=factory
    )
    ledger.prepare()
    assert len(built) == 1  # prepared before the first reservation needs it
    assert ledger.reserve(2, clock(), clock() + 60).slots
    assert len(built) == 1  # and not built again


def test_a_client_that_cannot_be_prepared_is_the_first_reservations_to_report(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zego_resume.adapters import rate_ledger

    monkeypatch.setattr(rate_ledger, "after_first_client", lambda build, **_: build())

    def factory() -> Any:
        raise RuntimeError("no region")

    ledger = DynamoLedger(
        "ledger", INTERVAL, key=lambda: KEY, fallback=LocalSchedule(INTERVAL), client_factory=factory
    )
    ledger.prepare()  # never raises
    assert len(ledger.reserve(1, clock(), clock() + 60).slots) == 1  # paced alone
    assert ledger.take_unavailability() == "RuntimeError"
