"""The resumer and its attempt loop carry decisions to ZEGO through fakes of every port, on a fake
clock, without a thread."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from zego_resume.domain.deadline import Deadline
from zego_resume.domain.outage import OPEN_AFTER, OutageDetector, RetryBudget
from zego_resume.domain.outcome import Failure
from zego_resume.domain.request import ResumeRequest
from zego_resume.domain.resumer import PendingDecision, Resumer, ResumeReport
from zego_resume.domain.retry import AttemptLoop, RetryPolicy
from zego_resume.ports import SecretError, TransportError, ZegoCredentials

from .fakes import (
    ROTATED_SECRET,
    SECRET,
    AdmittingBudget,
    DeadlineBudget,
    FakeClock,
    FakeCredentials,
    FakeGateway,
    FakeSleep,
    InlineRunner,
)

SEQUENCE = 1_764_410_000_123
NEVER = 10**9  # outage_after for the tests of the retry mechanics: no outage ever opens
PROBE_SECONDS = 10.0


class World:
    """A resumer wired to fakes that share one clock: sleeping moves it."""

    def __init__(
        self,
        gateway: FakeGateway,
        *,
        credentials: FakeCredentials | None = None,
        is_test: bool = False,
        remaining_seconds: float = 60.0,
        budget: AdmittingBudget | None = None,
        outage_after: int = NEVER,
        retry_budget: RetryBudget | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.sleep = FakeSleep(self.clock)
        self.gateway = gateway
        self.credentials = credentials or FakeCredentials()
        self.budget = budget if budget is not None else DeadlineBudget(self.clock)
        self.runner = InlineRunner(self.clock)
        self.outage = OutageDetector(PROBE_SECONDS, open_after=outage_after, clock=self.clock)
        attempts = AttemptLoop(
            gateway,
            self.credentials,
            self.budget,
            sleep=self.sleep,
            jitter=lambda: 0.5,
            outage=self.outage,
            retry_budget=retry_budget or RetryBudget(),
        )
        self.resumer = Resumer(attempts, self.credentials, self.budget, self.runner, is_test=is_test)
        self.deadline = Deadline(remaining_seconds, clock=self.clock)

    def resume(self, *pending: PendingDecision) -> ResumeReport:
        return self.resumer.resume(list(pending), self.deadline)


def _pending(
    key: str, stream_ids: Sequence[str], sequence: int = SEQUENCE, receive: int = 1
) -> PendingDecision:
    return PendingDecision(key, ResumeRequest(stream_ids=tuple(stream_ids), sequence=sequence), receive)


def _only_failure(report: ResumeReport, key: str) -> Failure:
    (failed,) = report.outcomes[key].failed
    return failed[0]


# --- success and retries ----------------------------------------------------------------------


def test_a_successful_call_resumes_every_id() -> None:
    world = World(FakeGateway([0]))
    report = world.resume(_pending("d", ["stream-a", "stream-b"]))
    assert report.outcomes["d"].resumed == ("stream-a", "stream-b")
    assert report.outcomes["d"].failed == ()
    assert [call.stream_ids for call in world.gateway.calls] == [("stream-a", "stream-b")]


def test_the_first_attempt_sends_the_decisions_sequence() -> None:
    world = World(FakeGateway([0]))
    world.resume(_pending("d", ["s"], sequence=SEQUENCE))
    assert world.gateway.calls[0].sequence == SEQUENCE


@pytest.mark.parametrize(
    "transient",
    [30002, 30003, 42004, 100000004, 100000015, 12345, TransportError("Timeout", "no answer")],
    ids=["30002", "30003", "42004", "100000004", "100000015", "unknown-12345", "transport-error"],
)
def test_a_transient_answer_is_retried_with_a_higher_sequence_until_success(
    transient: int | Exception,
) -> None:
    # Given ZEGO failing twice with a transient answer, then accepting
    world = World(FakeGateway([transient, transient, 0]))
    # When the decision is resumed
    report = world.resume(_pending("d", ["s"]))
    # Then three separate calls were made, each with a strictly higher Sequence, and it succeeded
    sequences = [call.sequence for call in world.gateway.calls]
    assert len(sequences) == 3
    assert all(later > earlier for earlier, later in itertools.pairwise(sequences))
    assert report.outcomes["d"].resumed == ("s",)
    assert report.outcomes["d"].failed == ()


def test_back_off_delays_grow_between_retries() -> None:
    world = World(FakeGateway([30003] * 7 + [0]))
    world.resume(_pending("d", ["s"]))
    delays = world.sleep.delays
    assert len(delays) == 7
    assert all(delay > 0 for delay in delays)
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]


def test_a_rate_limited_answer_pauses_the_budget_for_at_least_zegos_window() -> None:
    world = World(FakeGateway([30002, 0]))
    world.resume(_pending("d", ["s"]))
    assert world.budget.pauses
    assert min(world.budget.pauses) >= 1.0  # ZEGO counts calls over a sliding second


@pytest.mark.parametrize("code", [30004, 30005, 30006, 100000001, 100000010, 100000016])
def test_a_permanent_code_is_not_retried(code: int) -> None:
    world = World(FakeGateway([code, 0]))
    report = world.resume(_pending("d", ["s"]))
    assert len(world.gateway.calls) == 1
    failure = _only_failure(report, "d")
    assert failure.code == str(code)
    assert failure.transient is False
    assert failure.zego_request_id == "zego-req-1"
    assert failure.attempts == 1


def test_a_signature_mismatch_refreshes_the_secret_once_then_succeeds() -> None:
    # Given ZEGO refusing the cached secret once (it was rotated), then accepting the fresh one
    world = World(FakeGateway([100000005, 0]))
    # When the decision is resumed
    report = world.resume(_pending("d", ["s"]))
    # Then the secret was refreshed once, the retry used it, and nothing failed
    assert world.credentials.refreshes == 1
    assert [call.credentials.server_secret for call in world.gateway.calls] == [SECRET, ROTATED_SECRET]
    assert report.outcomes["d"].failed == ()
    assert report.outcomes["d"].resumed == ("s",)
    assert world.gateway.calls[1].sequence > world.gateway.calls[0].sequence


def test_a_signature_mismatch_after_a_refresh_is_permanent() -> None:
    world = World(FakeGateway([100000005, 100000005, 0]))
    report = world.resume(_pending("d", ["s"]))
    failure = _only_failure(report, "d")
    assert failure.code == "100000005"
    assert failure.transient is False
    assert world.credentials.refreshes == 1
    assert len(world.gateway.calls) == 2


def test_a_refresh_that_cannot_read_the_secret_is_a_transient_failure() -> None:
    credentials = FakeCredentials(refresh_error=SecretError("SecretUnavailable", "could not read"))
    world = World(FakeGateway([100000005, 0]), credentials=credentials)
    failure = _only_failure(world.resume(_pending("d", ["s"])), "d")
    assert (failure.code, failure.transient) == ("SecretUnavailable", True)
    assert len(world.gateway.calls) == 1


def test_after_eight_attempts_the_call_is_reported_as_a_transient_failure() -> None:
    # Given ZEGO answering 30003 forever
    world = World(FakeGateway(default=30003))
    # When the decision is resumed
    report = world.resume(_pending("d", ["s"]))
    # Then eight attempts were made (no more: the Sequence scheme leaves room for eight)
    assert len(world.gateway.calls) == 8
    failure = _only_failure(report, "d")
    assert (failure.code, failure.transient, failure.attempts) == ("30003", True, 8)


def test_no_attempt_repeats_a_sequence_even_when_every_attempt_fails() -> None:
    world = World(FakeGateway(default=TransportError("ConnectionError", "refused")))
    world.resume(_pending("d", ["s"]))
    sequences = [call.sequence for call in world.gateway.calls]
    assert len(set(sequences)) == len(sequences) == 8


def test_a_retry_policy_cannot_allow_more_attempts_than_the_sequence_scheme() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=9)


def test_a_transport_error_is_retried_and_reported_by_name_if_it_persists() -> None:
    world = World(FakeGateway(default=TransportError("Timeout", "no answer within 3.0s")))
    failure = _only_failure(world.resume(_pending("d", ["s"])), "d")
    assert (failure.code, failure.transient) == ("Timeout", True)
    assert len(world.gateway.calls) > 1


# --- time and secrets -------------------------------------------------------------------------


def test_with_no_time_left_no_call_is_made_and_the_failure_is_timeout() -> None:
    # Given an invocation whose remaining time is within the safety margin already
    world = World(FakeGateway([0]), remaining_seconds=1.0)
    # When the decision is resumed
    report = world.resume(_pending("d", ["s"]))
    # Then ZEGO is never called and the decision fails transient with "Timeout"
    assert world.gateway.calls == []
    failure = _only_failure(report, "d")
    assert (failure.code, failure.transient) == ("Timeout", True)


def test_a_retry_that_would_outlive_the_deadline_is_not_made() -> None:
    # Given little time left and ZEGO answering 30003 forever
    world = World(FakeGateway(default=30003), remaining_seconds=3.0)
    # When the decision is resumed
    report = world.resume(_pending("d", ["s"]))
    # Then it stops before eight attempts, reports ZEGO's last code, and never sleeps past the deadline
    assert 1 <= len(world.gateway.calls) < 8
    assert _only_failure(report, "d").code == "30003"
    assert world.clock() <= world.deadline.at
    # And it never sleeps for a retry it then does not make: each back-off precedes a call
    assert len(world.sleep.delays) == len(world.gateway.calls) - 1


def test_each_call_must_end_by_the_invocations_deadline() -> None:
    world = World(FakeGateway([30003, 0]), remaining_seconds=30.0)
    world.resume(_pending("d", ["s"]))
    assert [call.deadline for call in world.gateway.calls] == [world.deadline.at] * 2


def test_no_turn_is_asked_for_a_start_later_than_a_call_can_still_finish() -> None:
    world = World(FakeGateway([30003, 0]), remaining_seconds=30.0)
    world.resume(_pending("d", ["s"]))
    latest_start = world.deadline.at - RetryPolicy().min_call_time
    assert world.budget.turns == [latest_start, latest_start]


def test_a_call_that_gets_no_turn_is_not_made_and_the_last_real_failure_is_kept() -> None:
    # Given ZEGO failing once, and a budget that has no turn left after that first call
    budget = AdmittingBudget()
    budget._admit = lambda latest_start: len(budget.turns) == 1  # type: ignore[method-assign]
    world = World(FakeGateway([42004, 0]), budget=budget)
    # When the decision is resumed
    failure = _only_failure(world.resume(_pending("d", ["s"])), "d")
    # Then one call was made, the second attempt was not, and ZEGO's code is what is reported
    assert len(world.gateway.calls) == 1
    assert (failure.code, failure.transient, failure.attempts) == ("42004", True, 1)
    assert world.resume(_pending("e", ["t"])).stats.calls == 0


def test_a_secret_that_cannot_be_read_fails_every_decision_transiently() -> None:
    # Given a secret source that cannot answer
    credentials = FakeCredentials(error=SecretError("SecretUnavailable", "could not read the ZEGO secret"))
    world = World(FakeGateway([0]), credentials=credentials)
    # When two decisions are resumed
    report = world.resume(_pending("a", ["a1", "a2"]), _pending("b", ["b1"]))
    # Then ZEGO is not called and each decision fails, whole, transient, with that code
    assert world.gateway.calls == []
    for key, ids in (("a", ("a1", "a2")), ("b", ("b1",))):
        ((failure, failed_ids),) = report.outcomes[key].failed
        assert (failure.code, failure.transient, failed_ids) == ("SecretUnavailable", True, ids)


# --- test mode --------------------------------------------------------------------------------


def test_in_test_mode_a_decision_without_the_prefix_is_rejected_and_not_sent() -> None:
    # Given a test-environment resumer for AppId 123
    world = World(FakeGateway(default=0), credentials=FakeCredentials(app_id=123), is_test=True)
    # When one decision carries the prefix and one does not
    report = world.resume(_pending("good", ["zegotest-123-a"]), _pending("bad", ["stream-b"]))
    # Then the bad one is rejected, never sent, and the good one is resumed
    assert report.rejected["bad"].reason == "MissingTestPrefix"
    assert "bad" not in report.outcomes
    assert report.outcomes["good"].resumed == ("zegotest-123-a",)
    assert [sid for call in world.gateway.calls for sid in call.stream_ids] == ["zegotest-123-a"]


# --- several calls ----------------------------------------------------------------------------


def test_45_and_1_ids_with_the_same_sequence_take_exactly_three_calls() -> None:
    world = World(FakeGateway(default=0))
    big = [f"big-{index}" for index in range(45)]
    report = world.resume(_pending("big", big), _pending("small", ["lone"]))
    assert len(world.gateway.calls) == 3
    assert sorted(len(call.stream_ids) for call in world.gateway.calls) == [6, 20, 20]
    assert sorted(report.outcomes["big"].resumed) == sorted(big)
    assert report.outcomes["small"].resumed == ("lone",)
    assert report.stats.calls == 3


def test_one_id_zego_refuses_never_fails_its_neighbours_from_other_decisions() -> None:
    # Given one call of 20 ids: 19 from two decisions and one id ZEGO refuses (30006) from a third
    gateway = FakeGateway(by_stream={"lone": 30006}, default=0)
    world = World(gateway)
    first = [f"first-{index}" for index in range(10)]
    second = [f"second-{index}" for index in range(9)]
    # When they are resumed
    report = world.resume(_pending("first", first), _pending("small", ["lone"]), _pending("second", second))
    # Then the call was split in halves until the refused id stood alone: only it fails
    assert _only_failure(report, "small").code == "30006"
    assert report.outcomes["small"].resumed == ()
    assert sorted(report.outcomes["first"].resumed) == sorted(first)
    assert sorted(report.outcomes["second"].resumed) == sorted(second)
    assert report.outcomes["first"].failed == report.outcomes["second"].failed == ()
    # ... every split call took its turn from the rate budget, with a Sequence of its own
    assert len(gateway.calls) == len(world.budget.turns)
    assert any(call.stream_ids == ("lone",) for call in gateway.calls)
    assert report.stats.splits >= 1
    lone_sequences = [call.sequence for call in gateway.calls if "lone" in call.stream_ids]
    assert lone_sequences == sorted(set(lone_sequences))


def test_a_split_stops_when_the_attempts_of_the_receive_are_spent() -> None:
    # Given ZEGO answering 30003 seven times, then 30006 to a 20-id call
    ids = [f"s-{index}" for index in range(20)]
    gateway = FakeGateway(script=[30003] * 7 + [30006], default=0)
    world = World(gateway)
    report = world.resume(_pending("wide", ids))
    # Then no attempt number is left for halves: the whole call fails 30006, nothing is resent
    ((failure, failed),) = report.outcomes["wide"].failed
    assert (failure.code, sorted(failed)) == ("30006", sorted(ids))
    assert len(gateway.calls) == 8


# --- riding out an outage -----------------------------------------------------------------------


def test_after_failures_in_a_row_zego_is_probed_once_per_interval_and_the_rest_handed_back() -> None:
    # Given ZEGO answering 503 to everything, and 10 calls' worth of decisions
    from zego_resume.ports import TransportError

    gateway = FakeGateway(default=TransportError("HttpError", "HTTP 503"))
    world = World(gateway, outage_after=OPEN_AFTER)
    decisions = [_pending(f"d{n}", [f"d{n}-{i}" for i in range(20)]) for n in range(10)]
    # When they are resumed in one invocation
    report = world.resume(*decisions)
    # Then the outage opened once OPEN_AFTER different calls had failed; no other call was made
    # before the probe interval, and every decision is handed back (transient) with the cause
    assert len({call.stream_ids for call in gateway.calls}) == OPEN_AFTER
    assert report.stats.outage_refused >= 10 - OPEN_AFTER
    for n in range(10):
        failure = _only_failure(report, f"d{n}")
        assert failure.transient
        assert failure.code == "HttpError"
    assert world.outage.outage_seconds() >= 0
    # ... and once the interval has passed, one probe goes; a success closes the outage
    world.clock.advance(PROBE_SECONDS)
    gateway.default = 0
    report = world.resume(*decisions)
    assert report.stats.probes == 1
    assert all(report.outcomes[f"d{n}"].failed == () for n in range(10))
    assert world.outage.outage_seconds() == 0


def test_a_failed_probe_keeps_the_outage_and_the_next_waits_a_whole_interval() -> None:
    from zego_resume.ports import TransportError

    gateway = FakeGateway(default=TransportError("ConnectionError", "refused"))
    world = World(gateway, outage_after=OPEN_AFTER)
    # (each decision its own Sequence, so each its own call)
    world.resume(*[_pending(f"x{n}", [f"x{n}"], sequence=SEQUENCE + 1000 * n) for n in range(OPEN_AFTER)])
    made = len(gateway.calls)
    world.clock.advance(PROBE_SECONDS)
    world.resume(_pending("b", ["b-1"]), _pending("c", ["c-1"]))
    assert len(gateway.calls) == made + 1  # one probe, failed
    world.clock.advance(PROBE_SECONDS / 2)
    world.resume(_pending("d", ["d-1"]))
    assert len(gateway.calls) == made + 1  # not yet
    assert world.outage.outage_seconds() >= PROBE_SECONDS


def test_one_call_that_keeps_failing_never_opens_an_outage() -> None:
    # Given ZEGO failing one batch every time (42004), and answering every other call
    gateway = FakeGateway(by_stream={"stuck": 42004}, default=0)
    world = World(gateway, outage_after=OPEN_AFTER)
    # When it is retried across many invocations, beside other calls that succeed
    for round_ in range(3):
        world.resume(_pending("s", ["stuck"]), _pending(f"ok{round_}", ["fine"], sequence=SEQUENCE + 5000))
    # Then it counted once: no outage, the others went through
    assert world.outage.outage_seconds() == 0
    assert not world.outage.is_open


def test_30002_and_permanent_codes_never_open_an_outage() -> None:
    gateway = FakeGateway(by_stream={"refused": 30006, "fast": 30002}, default=0)
    world = World(gateway, outage_after=2)
    for _ in range(3):
        world.resume(_pending("r", ["refused"]), _pending("f", ["fast"]))
    assert world.outage.outage_seconds() == 0


def test_in_a_brownout_retries_draw_on_a_budget_that_successes_refill() -> None:
    # Given ZEGO failing every other call (30003), a retry budget of 20 tokens (4 retries)
    gateway = FakeGateway(script=[30003, 0] * 200)
    world = World(gateway, retry_budget=RetryBudget(capacity=20, retry_cost=5, refund=1))
    # When 40 calls' worth of decisions are resumed
    report = world.resume(*[_pending(f"d{n}", [f"d{n}-{i}" for i in range(20)]) for n in range(40)])
    # Then far fewer retries were made than failures, and the first attempts were never refused
    first_attempts = len({call.stream_ids for call in gateway.calls})
    assert first_attempts == 40
    assert report.stats.retries_refused > 0
    assert report.stats.retries < 20


def test_a_stream_in_two_decisions_is_sent_once_and_counts_for_both() -> None:
    world = World(FakeGateway(default=0))
    report = world.resume(
        _pending("old", ["shared", "old-only"], sequence=SEQUENCE),
        _pending("new", ["shared"], sequence=SEQUENCE + 5_000),
    )
    sent = [sid for call in world.gateway.calls for sid in call.stream_ids]
    assert sent.count("shared") == 1
    (shared_call,) = [call for call in world.gateway.calls if "shared" in call.stream_ids]
    assert shared_call.sequence == SEQUENCE + 5_000
    assert set(report.outcomes["old"].resumed) == {"shared", "old-only"}
    assert report.outcomes["new"].resumed == ("shared",)


def test_a_redelivered_decision_sends_higher_sequences_than_its_first_delivery() -> None:
    first = World(FakeGateway(default=30003))
    first.resume(_pending("d", ["s"], receive=1))
    second = World(FakeGateway([0]))
    second.resume(_pending("d", ["s"], receive=2))
    assert second.gateway.calls[0].sequence > max(call.sequence for call in first.gateway.calls)


def test_stats_count_calls_retries_and_errors_by_code() -> None:
    world = World(FakeGateway([30003, 30002, TransportError("Timeout", "slow"), 30003, 0]))
    report = world.resume(_pending("d", ["s"]))
    assert report.stats.calls == 5
    assert report.stats.retries == 4
    assert dict(report.stats.errors) == {"30003": 2, "30002": 1, "Timeout": 1}


def test_stats_count_secret_refreshes() -> None:
    world = World(FakeGateway([100000005, 0]))
    assert world.resume(_pending("d", ["s"])).stats.secret_refreshes == 1


def test_an_empty_batch_makes_no_call() -> None:
    world = World(FakeGateway([0]))
    report = world.resume()
    assert world.gateway.calls == []
    assert report.outcomes == {}


def test_every_call_takes_a_turn_from_the_budget() -> None:
    budget = AdmittingBudget()
    world = World(FakeGateway([30003, 30003, 0]), budget=budget)
    world.resume(_pending("d", ["s"]))
    assert len(budget.turns) == len(world.gateway.calls) == 3


def test_the_budget_is_told_how_many_calls_a_batch_will_make() -> None:
    world = World(FakeGateway(default=0))
    world.resume(_pending("d", [f"s{n}" for n in range(45)]))
    assert world.budget.expected == [3]


def test_calls_the_runner_did_not_finish_fail_as_timeouts_and_are_not_lost() -> None:
    # Given a runner that finishes only the first of three calls
    class FirstOnlyRunner(InlineRunner):
        def run(self, tasks, *, wait_until):  # type: ignore[no-untyped-def]
            return [tasks[0](), None, None]

    world = World(FakeGateway(default=0))
    world.resumer = Resumer(
        AttemptLoop(world.gateway, world.credentials, world.budget, sleep=world.sleep),
        world.credentials,
        world.budget,
        FirstOnlyRunner(),
    )
    ids = [f"s{n}" for n in range(60)]
    # When 60 ids (three calls) are resumed
    report = world.resume(_pending("d", ids))
    # Then the first call's 20 ids are resumed and the other 40 fail as a transient Timeout
    assert report.outcomes["d"].resumed == tuple(ids[:20])
    failed = report.outcomes["d"].failed
    assert {(failure.code, failure.transient) for failure, _ in failed} == {("Timeout", True)}
    assert [stream_id for _, part in failed for stream_id in part] == ids[20:]


def test_a_secret_lost_between_attempts_fails_the_call_transiently() -> None:
    # Given a secret source that answers once, then cannot be read any more
    class FlakyCredentials(FakeCredentials):
        def __init__(self) -> None:
            super().__init__()
            self.reads = 0

        def current(self) -> ZegoCredentials:
            self.reads += 1
            if self.reads > 1:
                raise SecretError("SecretUnavailable", "could not read the ZEGO secret")
            return super().current()

    world = World(FakeGateway([0]), credentials=FlakyCredentials())
    # When a decision is resumed
    failure = _only_failure(world.resume(_pending("d", ["s"])), "d")
    # Then no call is made without credentials, and the failure is transient
    assert world.gateway.calls == []
    assert (failure.code, failure.transient) == ("SecretUnavailable", True)


def test_a_call_waiting_for_its_turn_when_zego_goes_out_is_handed_back_unsent() -> None:
    # Given a budget whose turn comes only after ZEGO has failed OPEN_AFTER times (other calls,
    # in flight meanwhile)
    gateway = FakeGateway(default=0)

    class LateTurns(AdmittingBudget):
        def _admit(self, latest_start: float) -> bool:
            for _ in range(OPEN_AFTER):
                world.outage.failed(Failure("HttpError", "HTTP 503", transient=True))
            return True

    world = World(gateway, outage_after=OPEN_AFTER, budget=LateTurns())
    # When a call admitted while there was no outage takes its turn
    report = world.resume(_pending("d", ["d-1"]))
    # Then it was not sent, and goes back with the failure that opened the outage
    assert gateway.calls == []
    failure = _only_failure(report, "d")
    assert failure.transient
    assert failure.code == "HttpError"
    assert report.stats.outage_refused == 1
