"""The fleet's rate ledger against moto server's DynamoDB, over real HTTP: environments reserving
at once never share or squeeze a slot, and a missing table only makes an environment pace alone."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from zego_resume.adapters.rate_budget import LocalSchedule, slot_interval
from zego_resume.adapters.rate_ledger import DynamoLedger
from zegosim.aws import create_rate_ledger

from .conftest import Local

pytestmark = [pytest.mark.integration, pytest.mark.enable_socket]

INTERVAL = slot_interval(20, 0.040)
SHARE_INTERVAL = slot_interval(10, 0.040)


def _ledger(table: str) -> DynamoLedger:
    return DynamoLedger(
        table, INTERVAL, key=lambda: "zego-rate#1234567890", fallback=LocalSchedule(SHARE_INTERVAL)
    )


def test_environments_reserving_at_once_get_disjoint_spaced_slots(local: Local) -> None:
    # Given one ledger table and four environments (each its own client), in threads
    table = create_rate_ledger(f"ledger-{uuid.uuid4().hex[:8]}", local.environment)
    ledgers = [_ledger(table) for _ in range(4)]
    slots: list[float] = []
    lock = threading.Lock()

    def reserve(ledger: DynamoLedger) -> None:
        for _ in range(15):
            got = ledger.reserve(4, time.time(), time.time() + 3600).slots
            with lock:
                slots.extend(got)

    # When they all reserve batches at the same time
    threads = [threading.Thread(target=reserve, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every slot is the fleet's alone: 240 slots, each an interval from the next
    ordered = sorted(slots)
    assert len(ordered) == 4 * 15 * 4
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= INTERVAL - 1e-6
    assert all(ledger.take_unavailability() is None for ledger in ledgers)
    # ... each batch in one DynamoDB request, two when it found the fleet idle or woke it (how
    # often that happens depends on how busy the machine keeps the threads)
    assert sum(ledger.requests for ledger in ledgers) <= 2 * 60


def test_a_missing_table_makes_the_environment_pace_alone_and_say_why(local: Local) -> None:
    ledger = _ledger("no-such-table")
    now = time.time()
    slots = ledger.reserve(3, now, now + 60).slots
    assert len(slots) == 3
    assert slots[1] - slots[0] == pytest.approx(SHARE_INTERVAL, abs=1e-6)
    assert ledger.take_unavailability() == "ResourceNotFoundException"
