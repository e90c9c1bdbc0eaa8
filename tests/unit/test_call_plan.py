"""Which ZEGO calls a batch needs, and which Sequence each attempt sends."""

from __future__ import annotations

import itertools

import pytest

from zego_resume.domain.call_plan import (
    ATTEMPTS_PER_RECEIVE,
    ORDERED_RECEIVES,
    Decision,
    attempt_sequence,
    base_sequence,
    chunk_stream_ids,
    plan_calls,
)

ZEGO_MAX_IDS_PER_CALL = 20  # docs/zego-api.md: StreamId[] takes 1..20 values


def _ids(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}-{index}" for index in range(count))


# --- chunk_stream_ids -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "sizes"),
    [(1, [1]), (20, [20]), (21, [20, 1]), (45, [20, 20, 5]), (60, [20, 20, 20])],
    ids=["1", "20", "21", "45", "60"],
)
def test_chunks_hold_at_most_20_ids_in_order(count: int, sizes: list[int]) -> None:
    ids = _ids("s", count)
    chunks = chunk_stream_ids(ids)
    assert [len(chunk) for chunk in chunks] == sizes
    assert tuple(itertools.chain.from_iterable(chunks)) == ids


def test_no_ids_make_no_chunk() -> None:
    assert chunk_stream_ids([]) == []


# --- plan_calls -------------------------------------------------------------------------------


def test_decisions_with_the_same_sequence_are_packed_into_the_fewest_calls() -> None:
    # Given a request of 45 ids and one of 1 id, with the same sequence
    big = Decision("big", _ids("big", 45), base_sequence=1000)
    small = Decision("small", ("lone",), base_sequence=1000)
    # When the calls are planned
    plan = plan_calls([big, small])
    # Then 46 ids go out in 3 calls of 20, 20 and 6, each id exactly once, with that sequence
    assert sorted(len(call.stream_ids) for call in plan.calls) == [6, 20, 20]
    sent = [sid for call in plan.calls for sid in call.stream_ids]
    assert sorted(sent) == sorted((*big.stream_ids, "lone"))
    assert len(set(sent)) == 46
    assert {call.base_sequence for call in plan.calls} == {1000}


def test_overlapping_ids_with_the_same_sequence_are_sent_once() -> None:
    plan = plan_calls(
        [Decision("a", ("x", "y", "z"), base_sequence=5), Decision("b", ("y", "z", "w"), base_sequence=5)]
    )
    sent = [sid for call in plan.calls for sid in call.stream_ids]
    assert sorted(sent) == ["w", "x", "y", "z"]


def test_a_stream_named_twice_goes_only_with_the_higher_sequence() -> None:
    # Given two decisions naming `shared`, the second one newer
    older = Decision("older", ("only-old", "shared"), base_sequence=100)
    newer = Decision("newer", ("shared", "only-new"), base_sequence=200)
    # When the calls are planned (in either order)
    for decisions in ([older, newer], [newer, older]):
        plan = plan_calls(decisions)
        # Then `shared` is in exactly one call, the one sent with the higher sequence
        carrying = [call for call in plan.calls if "shared" in call.stream_ids]
        assert len(carrying) == 1
        assert carrying[0].base_sequence == 200
        (old_call,) = [call for call in plan.calls if "only-old" in call.stream_ids]
        assert old_call.base_sequence == 100


def test_no_call_ever_holds_more_than_zegos_limit() -> None:
    decisions = [Decision(f"d{n}", _ids(f"d{n}", 7 * n + 1), base_sequence=n % 3) for n in range(12)]
    plan = plan_calls(decisions)
    assert all(1 <= len(call.stream_ids) <= ZEGO_MAX_IDS_PER_CALL for call in plan.calls)


def test_calls_for_maps_each_decisions_ids_to_the_calls_carrying_them() -> None:
    # Given a decision spread over several calls, one of its ids claimed by a newer decision
    first = Decision("first", (*_ids("f", 25), "shared"), base_sequence=100)
    second = Decision("second", ("shared", "other"), base_sequence=300)
    plan = plan_calls([first, second])
    for decision in (first, second):
        # When we ask which calls carry it
        by_call = plan.calls_for(decision)
        # Then every one of its ids is mapped exactly once, to a call that really carries it
        mapped = [sid for ids in by_call.values() for sid in ids]
        assert sorted(mapped) == sorted(decision.stream_ids)
        for index, ids in by_call.items():
            assert set(ids) <= set(plan.calls[index].stream_ids)
    assert "shared" in plan.calls[next(iter(plan.calls_for(second)))].stream_ids


def test_a_plan_of_no_decisions_has_no_call() -> None:
    assert plan_calls([]).calls == ()


# --- the Sequence of each attempt -----------------------------------------------------------


def test_sequences_strictly_increase_across_attempts() -> None:
    base = base_sequence(1764410000123, 1)
    sequences = [attempt_sequence(base, attempt) for attempt in range(ATTEMPTS_PER_RECEIVE)]
    assert all(later > earlier for earlier, later in itertools.pairwise(sequences))


def test_the_first_attempt_of_the_first_receive_sends_the_decisions_own_sequence() -> None:
    assert attempt_sequence(base_sequence(1764410000123, 1), 0) == 1764410000123


def test_every_sequence_of_a_later_receive_is_greater_than_any_of_an_earlier_one() -> None:
    # Property, checked exhaustively over the receives that can come within ZEGO's 10 s window of
    # each other (redelivery delays 2, 4, 8 s) and every attempt of each.
    sequence = 1764410000123
    attempts = range(ATTEMPTS_PER_RECEIVE)
    for receive, later_receive in itertools.combinations(range(1, ORDERED_RECEIVES + 1), 2):
        earliest_later = min(attempt_sequence(base_sequence(sequence, later_receive), a) for a in attempts)
        latest_earlier = max(attempt_sequence(base_sequence(sequence, receive), a) for a in attempts)
        assert earliest_later > latest_earlier, (receive, later_receive)


@pytest.mark.parametrize("attempt", [-1, ATTEMPTS_PER_RECEIVE, ATTEMPTS_PER_RECEIVE + 5])
def test_an_attempt_outside_the_range_raises(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        attempt_sequence(1000, attempt)


def test_a_decision_riding_out_a_long_outage_moves_later_by_at_most_39_ms() -> None:
    # Receives after the fifth come at least 16 s apart: outside ZEGO's window, the offset stops
    # growing, so hundreds of receives never let a stale resume overtake a newer forbid.
    sequence = 1764410000123
    latest = max(
        attempt_sequence(base_sequence(sequence, receive), attempt)
        for receive in range(1, 1000)
        for attempt in range(ATTEMPTS_PER_RECEIVE)
    )
    assert latest - sequence == (ORDERED_RECEIVES - 1) * ATTEMPTS_PER_RECEIVE + ATTEMPTS_PER_RECEIVE - 1 == 39


def test_the_fifth_receive_comes_outside_zegos_window_of_the_fourth() -> None:
    from zego_resume.domain.outage import redelivery_delay

    assert redelivery_delay(ORDERED_RECEIVES - 1, cap=120) > 10
