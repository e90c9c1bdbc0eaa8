"""ZEGO's rules as the emulator applies them, driven call by call with no socket, thread or sleep:
every arrival time is set by hand."""

from __future__ import annotations

import pytest

from zegosim.zego.rules import zego_signature

from .fake_clock import FakeClock
from .signed_calls import APP_ID, NOW, Caller, build_query, make_caller, sign

pytestmark = pytest.mark.disable_socket

SEQUENCE_PROBLEM = 2  # ZEGO's public "Incorrect input parameter"
BAD_ID_LIST = 30006


@pytest.fixture
def caller() -> Caller:
    return make_caller()


# ----- signature ---------------------------------------------------------------------------------


def test_signature_matches_zegos_official_vector() -> None:
    # Given the vector from ZEGO's Go sample
    args = (12345, "4fd24687296dd9f3", "9193cc662a4c0ec135ec71fb57194b38", 1615186943)
    # When both the emulator and the independent helper sign it
    # Then both give ZEGO's published signature
    assert zego_signature(*args) == "43e5cfcca828314675f91b001390566a"
    assert sign(*args) == "43e5cfcca828314675f91b001390566a"


# ----- a valid call ------------------------------------------------------------------------------


def test_valid_resume_answers_success_and_applies_the_streams(caller: Caller) -> None:
    # Given a correctly signed resume of two streams
    # When it arrives
    decision = caller.send(stream_ids=("stream-a", "stream-b"), sequence="1764410000123")
    # Then it answers 0 "success" with a RequestId, and both streams are resumed
    assert (decision.record.code, decision.message) == (0, "success")
    assert decision.record.request_id
    rules = caller.rules
    assert rules.resumed_stream_ids() == {"stream-a", "stream-b"}
    assert rules.stream_state("stream-a") == ("resumed", 1764410000123)
    assert [c.request_id for c in rules.applied()] == [decision.record.request_id]


def test_every_call_gets_its_own_request_id(caller: Caller) -> None:
    # Given two valid calls
    # When they arrive
    first = caller.send(sequence="1").record.request_id
    second = caller.send(sequence="2").record.request_id
    # Then ZEGO names each with a different RequestId
    assert first != second


def test_forbid_marks_the_stream_forbidden(caller: Caller) -> None:
    # Given a correctly signed forbid
    # When it arrives
    code = caller.code(action="ForbidRTCStreams", sequence="5")
    # Then the stream is forbidden at that sequence and not counted as resumed
    assert code == 0
    assert caller.rules.stream_state("stream-a") == ("forbidden", 5)
    assert caller.rules.resumed_stream_ids() == set()


def test_duplicate_ids_in_one_call_are_applied_once(caller: Caller) -> None:
    # Given a call listing the same stream twice
    # When it arrives
    code = caller.code(stream_ids=("stream-a", "stream-a"))
    # Then it succeeds and the stream is applied once
    assert code == 0
    assert caller.rules.applied()[0].applied_stream_ids == ("stream-a",)


def test_percent_encoded_bracket_is_accepted(caller: Caller) -> None:
    # Given StreamId%5B%5D instead of StreamId[]
    query = build_query(stream_ids=("stream-a",), encode_brackets=True)
    assert "StreamId%5B%5D=stream-a" in query
    # When it arrives
    decision = caller.rules.receive(query, caller.arrivals.now)
    # Then it is understood like the raw bracket
    assert decision.record.code == 0
    assert caller.rules.resumed_stream_ids() == {"stream-a"}


# ----- validation, in order ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"Action": None}, 100000003, id="missing Action"),
        pytest.param({"Action": "DescribeRTCStreams"}, 100000003, id="unknown Action"),
        pytest.param({"AppId": None}, 100000001, id="missing AppId"),
        pytest.param({"AppId": "12ab"}, 100000001, id="non-digit AppId"),
        pytest.param({"AppId": "4294967296"}, 100000001, id="AppId over uint32"),
        pytest.param({"SignatureNonce": None}, 100000002, id="missing nonce"),
        pytest.param({"SignatureNonce": "abc"}, 100000002, id="short nonce"),
        pytest.param({"SignatureNonce": "zzzzzzzzzzzzzzzz"}, 100000002, id="non-hex nonce"),
        pytest.param({"Timestamp": None}, 100000006, id="missing Timestamp"),
        pytest.param({"Timestamp": "1764410000.5"}, 100000006, id="fractional Timestamp"),
        pytest.param({"Signature": None}, 100000007, id="missing Signature"),
        pytest.param({"Signature": "ABCDEF0123456789ABCDEF0123456789"}, 100000007, id="uppercase Signature"),
        pytest.param({"SignatureVersion": "1.0"}, 100000008, id="SignatureVersion 1.0"),
        pytest.param({"SignatureVersion": None}, 100000008, id="missing SignatureVersion"),
        pytest.param({"Signature": "0" * 32}, 100000005, id="wrong Signature"),
    ],
)
def test_malformed_common_parameter_gets_its_code(
    caller: Caller, overrides: dict[str, str | None], expected: int
) -> None:
    # Given an otherwise valid call with one common parameter broken
    # When it arrives
    code = caller.code(overrides=overrides)
    # Then the documented code comes back and nothing is applied
    assert code == expected
    assert caller.rules.applied() == []
    assert caller.rules.stream_state("stream-a") is None


def test_action_is_checked_before_the_common_parameters(caller: Caller) -> None:
    # Given a call with an unknown Action and no AppId
    # When it arrives
    code = caller.code(overrides={"Action": "Nope", "AppId": None})
    # Then the Action error wins
    assert code == 100000003


def test_another_app_id_is_unknown(caller: Caller) -> None:
    # Given a call correctly signed for another AppId
    # When it arrives
    code = caller.code(app_id=42)
    # Then ZEGO does not know that AppId
    assert code == 100000010


@pytest.mark.parametrize("offset", [601, -601])
def test_timestamp_more_than_ten_minutes_off_is_expired(offset: int) -> None:
    # Given rules whose wall clock reads NOW
    caller = make_caller(clock=FakeClock(NOW))
    # When a call signed 601 s away from it arrives
    code = caller.code(timestamp=int(NOW) + offset)
    # Then the signature is expired
    assert code == 100000004


@pytest.mark.parametrize("offset", [600, -600])
def test_timestamp_exactly_ten_minutes_off_is_accepted(offset: int) -> None:
    # Given rules whose wall clock reads NOW
    caller = make_caller(clock=FakeClock(NOW))
    # When a call signed exactly 600 s away from it arrives
    code = caller.code(timestamp=int(NOW) + offset)
    # Then it is still valid
    assert code == 0


def test_a_rotated_secret_makes_the_old_one_fail(caller: Caller) -> None:
    # Given the secret has been rotated
    new_secret = "fedcba9876543210fedcba9876543210"
    caller.rules.rotate_secret(new_secret)
    # When calls signed with the old and the new secret arrive
    old = caller.code(sequence="1")
    new = caller.code(sequence="2", secret=new_secret)
    # Then only the new one is accepted
    assert (old, new) == (100000005, 0)


def test_istest_true_on_a_production_app_is_refused(caller: Caller) -> None:
    # Given production rules
    # When a call says IsTest=true
    code = caller.code(is_test="true")
    # Then the environment mismatch is reported
    assert code == 30004


def test_test_app_without_istest_is_refused() -> None:
    # Given test-environment rules
    caller = make_caller(is_test=True)
    # When a call with the test prefix omits IsTest
    code = caller.code(stream_ids=(f"zegotest-{APP_ID}-a",))
    # Then the environment mismatch is reported
    assert code == 30004


def test_istest_with_another_value_is_refused(caller: Caller) -> None:
    # Given production rules
    # When IsTest is neither true nor false
    code = caller.code(is_test="yes")
    # Then it is an IsTest error
    assert code == 30004


def test_istest_false_is_accepted_on_a_production_app(caller: Caller) -> None:
    # Given production rules
    # When a call says IsTest=false explicitly
    code = caller.code(is_test="false")
    # Then it succeeds
    assert code == 0


@pytest.mark.parametrize("count", [0, 21])
def test_stream_id_count_outside_1_to_20_is_refused(caller: Caller, count: int) -> None:
    # Given a call with too few or too many stream ids
    ids = tuple(f"s{i}" for i in range(count))
    # When it arrives
    decision = caller.send(stream_ids=ids)
    # Then the stream list is invalid, and the Message does not blame the Sequence
    assert decision.record.code == BAD_ID_LIST
    assert "Sequence" not in decision.message


def test_twenty_stream_ids_are_accepted(caller: Caller) -> None:
    # Given a call with exactly 20 ids
    ids = tuple(f"s{i}" for i in range(20))
    # When it arrives
    code = caller.code(stream_ids=ids)
    # Then all 20 are resumed
    assert code == 0
    assert caller.rules.resumed_stream_ids() == set(ids)


def test_twenty_one_ids_are_refused_even_when_duplicates_make_them_fewer_streams(caller: Caller) -> None:
    # Given 21 ids naming only two streams
    ids = ("a",) * 20 + ("b",)
    # When the call arrives
    code = caller.code(stream_ids=ids)
    # Then ZEGO counts the list sent, not the streams named
    assert code == BAD_ID_LIST


@pytest.mark.parametrize("bad_id", ["has space", "dot.ted", "slash/ed", "é", "x" * 257, ""])
def test_stream_id_outside_the_charset_is_refused(caller: Caller, bad_id: str) -> None:
    # Given a call whose second id breaks ZEGO's stream id rules
    # When it arrives
    code = caller.code(stream_ids=("good-id", bad_id))
    # Then the whole call is refused and nothing applied
    assert code == BAD_ID_LIST
    assert caller.rules.stream_state("good-id") is None


def test_test_mode_requires_the_zegotest_prefix() -> None:
    # Given test-environment rules
    caller = make_caller(is_test=True)
    # When one call lacks the prefix and another carries it
    without = caller.code(is_test="true", stream_ids=("stream-a",))
    with_prefix = caller.code(is_test="true", stream_ids=(f"zegotest-{APP_ID}-a",))
    # Then only the prefixed one is accepted
    assert (without, with_prefix) == (BAD_ID_LIST, 0)


@pytest.mark.parametrize("sequence", ["abc", "-1", "1.5", "", " 1", "1" * 65])
def test_malformed_sequence_is_refused_naming_the_sequence(caller: Caller, sequence: str) -> None:
    # Given a call whose Sequence is not 1 to 64 ASCII digits
    # When it arrives
    decision = caller.send(sequence=sequence)
    # Then it is refused with its own code and a Message naming the Sequence, never 30006
    assert decision.record.code == SEQUENCE_PROBLEM
    assert "Sequence" in decision.message
    assert caller.rules.stream_state("stream-a") is None


def test_missing_sequence_is_refused_naming_the_sequence(caller: Caller) -> None:
    # Given a call without a Sequence
    # When it arrives
    decision = caller.send(sequence=None)
    # Then it is refused with the Sequence code, and the Message says it is missing
    assert decision.record.code == SEQUENCE_PROBLEM
    assert "Sequence" in decision.message
    assert "missing" in decision.message


def test_sequence_of_64_digits_is_accepted(caller: Caller) -> None:
    # Given the longest Sequence the emulator takes
    # When it arrives
    code = caller.code(sequence="9" * 64)
    # Then it is applied
    assert code == 0


def test_bad_id_list_and_bad_sequence_get_different_answers(caller: Caller) -> None:
    # Given one call with a bad id list and one with a bad Sequence
    # When both arrive
    bad_ids = caller.send(stream_ids=("has space",), sequence="1")
    bad_sequence = caller.send(stream_ids=("stream-a",), sequence="x")
    # Then neither the Code nor the Message is the same
    assert bad_ids.record.code != bad_sequence.record.code
    assert bad_ids.message != bad_sequence.message


def test_id_list_is_checked_before_the_sequence(caller: Caller) -> None:
    # Given a call with both a bad id list and a bad Sequence
    # When it arrives
    code = caller.code(stream_ids=(), sequence="x")
    # Then the id list error wins
    assert code == BAD_ID_LIST


# ----- rate limit --------------------------------------------------------------------------------


def test_call_over_the_rate_limit_gets_30002() -> None:
    # Given a limit of 3 calls a second
    caller = make_caller(rate_limit=3)
    # When 4 calls arrive at the same instant
    codes = [caller.code(sequence=str(i)) for i in range(1, 5)]
    # Then exactly the fourth is refused and not counted in the window
    assert codes == [0, 0, 0, 30002]
    assert caller.rules.rate_limited_count() == 1
    assert caller.rules.max_calls_in_any_window() == 3


@pytest.mark.parametrize(("later", "expected"), [(0.999, 30002), (1.0, 0)])
def test_calls_pass_again_once_the_window_has_slid(later: float, expected: int) -> None:
    # Given a limit of 3 that has been used up
    caller = make_caller(rate_limit=3)
    for i in range(4):
        caller.code(sequence=str(i + 1))
    # When the next call arrives just under or exactly one second later
    caller.arrivals.advance(later)
    code = caller.code(sequence="10")
    # Then it passes only once a whole second has gone by
    assert code == expected


def test_calls_refused_before_the_rate_limit_do_not_use_the_budget() -> None:
    # Given a limit of 2 and two calls with a wrong signature
    caller = make_caller(rate_limit=2)
    for _ in range(2):
        caller.code(secret="f" * 32)
    # When two valid calls follow at the same instant
    codes = [caller.code(sequence=str(i)) for i in (1, 2)]
    # Then both pass
    assert codes == [0, 0]


def test_calls_refused_after_the_rate_limit_still_use_the_budget() -> None:
    # Given a limit of 2, and one call with a bad id list that passed the rate check
    caller = make_caller(rate_limit=2)
    caller.code(stream_ids=("has space",))
    # When two valid calls follow at the same instant
    codes = [caller.code(sequence=str(i)) for i in (1, 2)]
    # Then the second is over the limit: ZEGO counted the refused one
    assert codes == [0, 30002]


def test_forbid_and_resume_share_the_budget() -> None:
    # Given a limit of 2
    caller = make_caller(rate_limit=2)
    # When a forbid, a resume and another forbid arrive at once
    codes = [
        caller.code(action="ForbidRTCStreams", sequence="1"),
        caller.code(action="ResumeRTCStreams", sequence="2"),
        caller.code(action="ForbidRTCStreams", sequence="3"),
    ]
    # Then the third is over the shared limit
    assert codes == [0, 0, 30002]


def test_the_window_is_counted_at_the_arrival_given() -> None:
    # Given a limit of 2 and calls arriving at 100.0, 100.6 and 101.2
    caller = make_caller(rate_limit=2)
    codes = []
    for sequence in ("1", "2", "3"):
        codes.append(caller.code(sequence=sequence))
        caller.arrivals.advance(0.6)
    # When the records are read
    arrivals = [c.arrival for c in caller.rules.calls()]
    # Then no one-second window held more than two, so all passed, each recorded where it arrived
    assert codes == [0, 0, 0]
    assert arrivals == pytest.approx([100.0, 100.6, 101.2])
    assert caller.rules.max_calls_in_any_window() == 2


def test_default_rate_limits_follow_zego() -> None:
    # Given rules built without a rate limit
    # When they are for production and the test environment
    # Then they allow 20 and 5 calls a second
    assert make_caller().rules.rate_limit == 20
    assert make_caller(is_test=True).rules.rate_limit == 5


def test_a_call_judged_late_counts_where_it_arrived() -> None:
    # Given a limit of 2: calls arrived at 100.0 and 101.5 and were judged in that order
    caller = make_caller(rate_limit=2)
    assert caller.rules.receive(build_query(sequence="1"), 100.0).record.code == 0
    assert caller.rules.receive(build_query(sequence="2"), 101.5).record.code == 0
    # When a call that arrived at 100.6 (its thread woke late) is judged after them, and then
    # one that arrived at 100.7
    late = caller.rules.receive(build_query(sequence="3"), 100.6).record.code
    over = caller.rules.receive(build_query(sequence="4"), 100.7).record.code
    # Then the late one passes (no second holding 100.6 held two calls), and the next is refused:
    # the second [100.6, 101.6) would hold 100.6, 100.7 and 101.5
    assert (late, over) == (0, 30002)
    assert caller.rules.max_calls_in_any_window() == 2


def test_a_late_judged_call_is_refused_when_a_later_second_is_full() -> None:
    # Given a limit of 2 and calls that arrived at 100.5 and 100.9
    caller = make_caller(rate_limit=2)
    caller.rules.receive(build_query(sequence="1"), 100.5)
    caller.rules.receive(build_query(sequence="2"), 100.9)
    # When a call that arrived at 100.2 is judged after them
    code = caller.rules.receive(build_query(sequence="3"), 100.2).record.code
    # Then it is refused: the second [100.2, 101.2) would hold three calls
    assert code == 30002


# ----- Sequence rule -----------------------------------------------------------------------------


def test_repeated_sequence_within_10s_is_ignored_but_answered_0(caller: Caller) -> None:
    # Given a stream forbidden at sequence 7
    caller.code(action="ForbidRTCStreams", sequence="7")
    # When a resume with sequence 7 arrives 5 s later
    caller.arrivals.advance(5)
    code = caller.code(sequence="7")
    # Then ZEGO answers 0 but leaves the stream as it was, and the refusal is recorded
    assert code == 0
    assert caller.rules.stream_state("stream-a") == ("forbidden", 7)
    [stale] = caller.rules.stale()
    assert (stale.stream_id, stale.sequence, stale.previous_sequence, stale.action) == (
        "stream-a",
        7,
        7,
        "ResumeRTCStreams",
    )
    assert stale.arrival == 105.0
    assert len(caller.rules.applied()) == 1


def test_stale_code_answers_the_whole_call_with_that_code() -> None:
    # Given rules that report stale sequences with 30006, and stream-a forbidden at 7
    caller = make_caller(stale_code=30006)
    caller.code(action="ForbidRTCStreams", sequence="7")
    # When a call with sequence 7 resumes stream-a and a fresh stream-b
    code = caller.code(stream_ids=("stream-a", "stream-b"), sequence="7")
    # Then it is answered 30006 and nothing in it is applied
    assert code == 30006
    assert caller.rules.stream_state("stream-a") == ("forbidden", 7)
    assert caller.rules.stream_state("stream-b") is None


def test_older_resume_does_not_undo_a_newer_forbid(caller: Caller) -> None:
    # Given stream-a forbidden at sequence 10
    caller.code(action="ForbidRTCStreams", sequence="10")
    # When a resume decided earlier (sequence 9) arrives afterwards
    caller.code(action="ResumeRTCStreams", sequence="9")
    # Then the stream stays forbidden
    assert caller.rules.stream_state("stream-a") == ("forbidden", 10)
    assert caller.rules.resumed_stream_ids() == set()


def test_sequences_are_compared_as_integers(caller: Caller) -> None:
    # Given stream-a forbidden at sequence 9
    caller.code(action="ForbidRTCStreams", sequence="9")
    # When a resume at sequence 10 follows (smaller as a string, larger as a number)
    caller.code(sequence="10")
    # Then it is applied
    assert caller.rules.stream_state("stream-a") == ("resumed", 10)


def test_stale_stream_does_not_hold_back_the_others_by_default(caller: Caller) -> None:
    # Given stream-a forbidden at sequence 10
    caller.code(action="ForbidRTCStreams", sequence="10")
    # When a resume at 9 lists stream-a and a fresh stream-b
    code = caller.code(stream_ids=("stream-a", "stream-b"), sequence="9")
    # Then stream-b is resumed and stream-a is not
    assert code == 0
    assert caller.rules.resumed_stream_ids() == {"stream-b"}


@pytest.mark.parametrize(("later", "applied"), [(10.0, False), (10.1, True)])
def test_sequence_rule_stops_applying_after_10_seconds(later: float, applied: bool) -> None:
    # Given stream-a forbidden at sequence 10
    caller = make_caller()
    caller.code(action="ForbidRTCStreams", sequence="10")
    # When a resume at sequence 9 arrives 10 s or a little more than 10 s later
    caller.arrivals.advance(later)
    caller.code(sequence="9")
    # Then ZEGO still compares at 10 s, and no longer after
    expected = ("resumed", 9) if applied else ("forbidden", 10)
    assert caller.rules.stream_state("stream-a") == expected
    assert (caller.rules.stale() == []) is applied


# ----- records -----------------------------------------------------------------------------------


def test_calls_records_every_request_in_arrival_order(caller: Caller) -> None:
    # Given an invalid and a valid call, one second apart
    caller.code(overrides={"Action": None})
    caller.arrivals.advance(1.0)
    caller.code(stream_ids=("x", "y"), sequence="8")
    # When the records are read
    first, second = caller.rules.calls()
    # Then both are there, with what was asked and answered
    assert (first.action, first.code) == ("", 100000003)
    assert (second.action, second.stream_ids, second.sequence, second.code) == (
        "ResumeRTCStreams",
        ("x", "y"),
        "8",
        0,
    )
    assert (first.arrival, second.arrival) == (100.0, 101.0)
    assert "Signature=" in second.query
    assert caller.rules.code_counts() == {100000003: 1, 0: 1}


def test_a_records_repr_hides_the_signed_query(caller: Caller) -> None:
    # Given a recorded call
    record = caller.send().record
    # When it is printed
    text = repr(record)
    # Then its signature does not show
    assert "Signature" not in text
    assert record.query not in text


def test_summary_counts_the_records() -> None:
    # Given a limit of 1: a successful call of two streams, a wrong signature, a 30002, a stale one
    caller = make_caller(rate_limit=1)
    caller.code(stream_ids=("a", "b"), sequence="5")
    caller.code(secret="f" * 32)
    caller.code(sequence="6")
    caller.arrivals.advance(1.0)
    caller.code(stream_ids=("a",), sequence="4")
    # When the summary is read
    summary = caller.rules.summary()
    # Then it counts each kind once
    assert summary == {
        "calls": 4,
        "applied": 1,
        "rateLimited": 1,
        "stale": 1,
        "codes": {"0": 2, "30002": 1, "100000005": 1},
        "maxCallsInAnyWindow": 1,
        "resumedStreamIds": 2,
    }


def test_reset_forgets_records_state_and_the_window() -> None:
    # Given a limit of 1 used up, and a stream resumed
    caller = make_caller(rate_limit=1)
    caller.code(sequence="5")
    # When the rules are reset
    caller.rules.reset()
    # Then nothing is remembered, and a call at the same instant passes again
    rules = caller.rules
    assert (rules.calls(), rules.stale(), rules.code_counts(), rules.stream_state("stream-a")) == (
        [],
        [],
        {},
        None,
    )
    assert rules.max_calls_in_any_window() == 0
    assert caller.code(sequence="1") == 0
