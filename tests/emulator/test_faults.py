"""Faults: how they are built, which call gets which, what they do to the rules' records, and
how each is answered on the wire. No socket: the answer is checked as the server would write it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from zegosim.zego.faults import Fault, FaultPlan
from zegosim.zego.server import HTML_ERROR_PAGE, answer_for

from .signed_calls import Caller, make_caller

pytestmark = pytest.mark.disable_socket


@pytest.fixture
def caller() -> Caller:
    return make_caller()


# ----- building a fault --------------------------------------------------------------------------


def test_fault_takes_one_kind_of_answer() -> None:
    # Given a fault asking both to drop and to answer a code
    # When it is built
    # Then it is refused
    with pytest.raises(ValueError, match="at most one of"):
        Fault(code=30003, drop=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"delay": -0.1}, "delay", id="negative delay"),
        pytest.param({"http_status": 199}, "http_status", id="status under 200"),
        pytest.param({"http_status": 600}, "http_status", id="status over 599"),
    ],
)
def test_fault_with_an_impossible_value_is_refused(fields: dict[str, Any], message: str) -> None:
    # Given fault fields no server could act on
    # When the fault is built
    # Then it is refused, naming the field
    with pytest.raises(ValueError, match=message):
        Fault(**fields)


def test_fault_from_json_reads_the_admin_apis_camel_case() -> None:
    # Given the admin API's form of a late drop that applies the call
    data = {"drop": True, "delay": 0.5, "apply": True}
    # When it is read
    fault = Fault.from_json(data)
    # Then it is the same fault as built in Python
    assert fault == Fault(drop=True, delay=0.5, apply=True)
    assert Fault.from_json({"httpStatus": 503}) == Fault.http(503)
    assert Fault.from_json({"nonJson": True}) == Fault.garbage()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"boom": 1}, "unknown fault fields", id="unknown field"),
        pytest.param({"code": "30003"}, "code must be an integer", id="code as text"),
        pytest.param({"code": True}, "code must be an integer", id="code as boolean"),
        pytest.param({"httpStatus": 503.0}, "httpStatus must be an integer", id="status as float"),
        pytest.param({"delay": "1"}, "delay must be a number", id="delay as text"),
        pytest.param({"drop": 1}, "must be booleans", id="drop as number"),
        pytest.param([], "JSON object", id="not an object"),
    ],
)
def test_fault_from_json_refuses_what_it_cannot_read(data: Any, message: str) -> None:
    # Given a malformed admin fault
    # When it is read
    # Then it is refused with a message naming the problem
    with pytest.raises(ValueError, match=message):
        Fault.from_json(data)


# ----- the plan: which call gets which fault -----------------------------------------------------


def test_queued_faults_come_in_order_then_stop() -> None:
    # Given two queued faults
    plan = FaultPlan()
    plan.inject(Fault.of_code(30003), Fault.of_code(42004))
    # When three calls ask for theirs
    handed = [plan.next_for(("s",)) for _ in range(3)]
    # Then the faults come in order, then none
    assert handed == [Fault.of_code(30003), Fault.of_code(42004), None]


def test_targeted_fault_comes_before_queued_ones() -> None:
    # Given a queued fault and one aimed at stream "target"
    plan = FaultPlan()
    plan.inject(Fault.of_code(30003))
    plan.inject_for_stream("target", Fault.http(503), times=1)
    # When a call carrying "target" and then another ask for theirs
    # Then the aimed fault wins first, and the queued one is still there for the next
    assert plan.next_for(("x", "target")) == Fault.http(503)
    assert plan.next_for(("target",)) == Fault.of_code(30003)


def test_random_faults_are_reproducible_from_their_seed() -> None:
    # Given two plans drawing from the same faults with the same seed
    faults = [Fault.of_code(30003), Fault.of_code(42004), Fault.http(503)]
    plans = [FaultPlan(), FaultPlan()]
    for plan in plans:
        plan.inject_randomly(faults, probability=0.5, seed=11)
    # When each hands out faults to 50 calls
    first, second = ([plan.next_for(("s",)) for _ in range(50)] for plan in plans)
    # Then both hand out the same ones, and both some faults and some clean calls
    assert first == second
    assert {None, *faults} >= set(first)
    assert None in first
    assert set(first) - {None}


def test_random_fault_probability_must_be_a_share() -> None:
    # Given a plan
    plan = FaultPlan()
    # When a probability outside 0..1, or faults missing, are asked for
    # Then they are refused
    with pytest.raises(ValueError, match="probability"):
        plan.inject_randomly([Fault.of_code(30003)], probability=1.5)
    with pytest.raises(ValueError, match="faults must not be empty"):
        plan.inject_randomly([], probability=0.5)


def test_targeted_fault_times_must_be_positive() -> None:
    # Given a plan
    # When a fault is aimed at a stream for zero calls
    # Then it is refused
    with pytest.raises(ValueError, match="times"):
        FaultPlan().inject_for_stream("s", Fault.of_code(30003), times=0)


# ----- faults meeting the rules ------------------------------------------------------------------


def test_code_fault_answers_that_code_without_applying(caller: Caller) -> None:
    # Given an injected 30003
    caller.faults.inject(Fault.of_code(30003))
    # When a valid call arrives
    decision = caller.send()
    # Then it is answered 30003 with ZEGO's Message for it, and nothing is applied
    assert (decision.record.code, decision.message) == (30003, "internal error")
    assert caller.rules.stream_state("stream-a") is None
    assert caller.rules.calls()[0].fault == Fault(code=30003)


def test_http_fault_records_no_code_and_applies_nothing(caller: Caller) -> None:
    # Given an injected HTTP 503
    caller.faults.inject(Fault.http(503))
    # When a valid call arrives
    record = caller.send().record
    # Then no ZEGO Code is recorded and the stream is unchanged
    assert record.code is None
    assert caller.rules.stream_state("stream-a") is None
    assert caller.rules.code_counts() == {}


def test_slow_fault_without_apply_changes_nothing(caller: Caller) -> None:
    # Given an injected slow answer that does not apply the call
    caller.faults.inject(Fault.slow(0.3, apply=False))
    # When a valid call arrives
    record = caller.send().record
    # Then the stream is unchanged and no Code is recorded
    assert record.code is None
    assert caller.rules.stream_state("stream-a") is None


def test_slow_success_is_applied_before_it_is_answered(caller: Caller) -> None:
    # Given an injected slow answer that applies the call
    caller.faults.inject(Fault.slow(0.3, apply=True))
    # When a valid call arrives
    record = caller.send(sequence="3").record
    # Then ZEGO applied it already, whatever the client later sees
    assert record.code == 0
    assert caller.rules.stream_state("stream-a") == ("resumed", 3)


def test_fault_with_apply_applies_though_the_client_hears_nothing(caller: Caller) -> None:
    # Given an injected drop that happens after ZEGO applied the call
    caller.faults.inject(Fault.dropped(apply=True))
    # When a valid call arrives
    caller.send(sequence="4")
    # Then the stream is resumed, yet the call does not count as applied (no answer was given)
    assert caller.rules.stream_state("stream-a") == ("resumed", 4)
    assert caller.rules.applied() == []


def test_invalid_calls_consume_no_fault(caller: Caller) -> None:
    # Given two queued faults
    caller.faults.inject(Fault.of_code(30003), Fault.of_code(42004))
    # When an invalid call and then three valid calls arrive
    codes = [caller.code(overrides={"Signature": "0" * 32})]
    codes += [caller.code(sequence=str(i)) for i in (1, 2, 3)]
    # Then the invalid call consumes no fault and the faults come in order
    assert codes == [100000005, 30003, 42004, 0]


def test_rate_limited_calls_consume_no_fault() -> None:
    # Given a limit of 1 and one queued fault
    caller = make_caller(rate_limit=1)
    caller.code(sequence="1")
    caller.faults.inject(Fault.of_code(42004))
    # When a call over the limit and, a second later, a valid call arrive
    over = caller.code(sequence="2")
    caller.arrivals.advance(1.0)
    later = caller.code(sequence="3")
    # Then the first is refused by the limit and the fault waits for the second
    assert (over, later) == (30002, 42004)


def test_clear_faults_forgets_queued_faults(caller: Caller) -> None:
    # Given a queued fault
    caller.faults.inject(Fault.of_code(30003))
    # When faults are cleared before a call
    caller.faults.clear()
    # Then the call succeeds
    assert caller.code() == 0


def test_random_faults_with_probability_1_hit_every_call(caller: Caller) -> None:
    # Given random faults that always fire
    caller.faults.inject_randomly([Fault.of_code(30003), Fault.of_code(42004)], probability=1.0, seed=1)
    # When three valid calls arrive
    codes = [caller.code(sequence=str(i)) for i in (1, 2, 3)]
    # Then each got one of the faults, and nothing was applied
    assert set(codes) <= {30003, 42004}
    assert caller.rules.applied() == []


def test_random_faults_with_probability_0_are_off(caller: Caller) -> None:
    # Given random faults turned on, then off
    caller.faults.inject_randomly([Fault.of_code(30003)], probability=1.0)
    caller.faults.inject_randomly([Fault.of_code(30003)], probability=0.0)
    # When three valid calls arrive
    codes = [caller.code(sequence=str(i)) for i in (1, 2, 3)]
    # Then none is faulted
    assert codes == [0, 0, 0]


def test_targeted_fault_hits_only_calls_carrying_the_stream(caller: Caller) -> None:
    # Given a fault aimed at one stream, for its next two calls
    caller.faults.inject_for_stream("target", Fault.of_code(30003), times=2)
    # When calls with and without that stream arrive
    codes = [
        caller.code(stream_ids=("other",), sequence="1"),
        caller.code(stream_ids=("x", "target"), sequence="2"),
        caller.code(stream_ids=("target",), sequence="3"),
        caller.code(stream_ids=("target",), sequence="4"),
    ]
    # Then only the first two carrying it are faulted, and the fault is then used up
    assert codes == [0, 30003, 30003, 0]
    assert caller.rules.stream_state("target") == ("resumed", 4)


def test_targeted_fault_without_a_count_persists_until_cleared(caller: Caller) -> None:
    # Given a fault aimed at one stream with no count
    caller.faults.inject_for_stream("target", Fault.of_code(42004))
    # When three calls carry it, then faults are cleared and a fourth does
    codes = [caller.code(stream_ids=("target",), sequence=str(n)) for n in (1, 2, 3)]
    caller.faults.clear()
    fourth = caller.code(stream_ids=("target",), sequence="4")
    # Then the first three were faulted and the fourth was not
    assert codes == [42004, 42004, 42004]
    assert fourth == 0


# ----- how each is answered on the wire ----------------------------------------------------------


def test_a_clean_call_is_answered_with_zegos_json_document(caller: Caller) -> None:
    # Given a valid call, and a latency of 0.15 s
    decision = caller.send()
    # When its answer is built
    answer = answer_for(decision, latency=0.15)
    # Then it is ZEGO's document, HTTP 200 JSON, held back by the latency
    assert (answer.status, answer.content_type, answer.drop, answer.sleep) == (
        200,
        "application/json",
        False,
        0.15,
    )
    assert json.loads(answer.body) == {
        "Code": 0,
        "Message": "success",
        "RequestId": decision.record.request_id,
        "Data": None,
    }


def test_a_refused_sequence_is_answered_with_its_code_and_message(caller: Caller) -> None:
    # Given a call without a Sequence
    decision = caller.send(sequence=None)
    # When its answer is built
    body = json.loads(answer_for(decision, latency=0.0).body)
    # Then the JSON carries the rules' Code and Message
    assert (body["Code"], body["Message"]) == (decision.record.code, decision.message)
    assert "Sequence" in body["Message"]


@pytest.mark.parametrize(
    ("fault", "status", "content_type"),
    [
        pytest.param(Fault.http(503), 503, "text/plain", id="http 503"),
        pytest.param(Fault.slow(0.05, apply=False), 504, "text/plain", id="slow, not applied"),
        pytest.param(Fault.garbage(), 200, "text/html", id="garbage"),
    ],
)
def test_a_fault_that_is_not_zegos_json_is_answered_as_a_gateway_would(
    caller: Caller, fault: Fault, status: int, content_type: str
) -> None:
    # Given a call meeting the fault
    caller.faults.inject(fault)
    decision = caller.send()
    # When its answer is built
    answer = answer_for(decision, latency=0.1)
    # Then the status and body are the gateway's, not JSON, after the latency and the fault's delay
    assert (answer.status, answer.content_type) == (status, content_type)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.body)
    assert answer.sleep == pytest.approx(0.1 + fault.delay)


def test_garbage_is_an_html_error_page(caller: Caller) -> None:
    # Given a call meeting a garbage fault
    caller.faults.inject(Fault.garbage())
    # When its answer is built
    answer = answer_for(caller.send(), latency=0.0)
    # Then the body is the load balancer's HTML page
    assert answer.body == HTML_ERROR_PAGE


def test_a_dropped_call_is_answered_with_nothing(caller: Caller) -> None:
    # Given a call meeting a drop
    caller.faults.inject(Fault.dropped())
    # When its answer is built
    answer = answer_for(caller.send(), latency=0.0)
    # Then the server is told to close the connection without writing
    assert answer.drop
    assert answer.body == b""


def test_a_slow_applied_fault_answers_success_late(caller: Caller) -> None:
    # Given a call meeting a slow fault that applies it
    caller.faults.inject(Fault.slow(0.3, apply=True))
    # When its answer is built
    answer = answer_for(caller.send(), latency=0.0)
    # Then it is ZEGO's success, held back by the delay
    assert (answer.status, json.loads(answer.body)["Code"], answer.sleep) == (200, 0, 0.3)
