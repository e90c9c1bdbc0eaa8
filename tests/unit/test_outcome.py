"""What ZEGO's codes mean (docs/zego-api.md, "Return codes that matter"), and where a decision ends."""

from __future__ import annotations

import pytest

from zego_resume.domain.outcome import CodeClass, DecisionOutcome, Failure, classify_code, settle

RETRYABLE = {CodeClass.TRANSIENT, CodeClass.RATE_LIMITED}

CODES = [
    pytest.param(0, CodeClass.SUCCESS, id="0-success"),
    pytest.param(30002, CodeClass.RATE_LIMITED, id="30002-rate-limited"),
    pytest.param(30003, CodeClass.TRANSIENT, id="30003-internal-error"),
    pytest.param(30004, CodeClass.PERMANENT, id="30004-is-test-wrong"),
    pytest.param(30005, CodeClass.PERMANENT, id="30005-invalid-app-id"),
    pytest.param(30006, CodeClass.PERMANENT, id="30006-invalid-stream-id-list"),
    pytest.param(42004, CodeClass.TRANSIENT, id="42004-batch-resume-failed"),
    pytest.param(100000004, CodeClass.TRANSIENT, id="100000004-signature-expired"),
    pytest.param(100000005, CodeClass.SIGNATURE_MISMATCH, id="100000005-signature-mismatch"),
    *[
        pytest.param(code, CodeClass.PERMANENT, id=f"{code}-malformed-common-parameter")
        for code in (100000001, 100000002, 100000003, 100000006, 100000007, 100000008, 100000009)
    ],
    pytest.param(100000013, CodeClass.PERMANENT, id="100000013-malformed"),
    pytest.param(100000014, CodeClass.PERMANENT, id="100000014-malformed"),
    pytest.param(100000010, CodeClass.PERMANENT, id="100000010-app-id-unknown"),
    pytest.param(100000011, CodeClass.PERMANENT, id="100000011-app-config-missing"),
    pytest.param(100000015, CodeClass.TRANSIENT, id="100000015-gateway-internal-error"),
    pytest.param(100000016, CodeClass.PERMANENT, id="100000016-environment-not-enabled"),
    pytest.param(100000017, CodeClass.PERMANENT, id="100000017-service-not-enabled"),
    pytest.param(12345, CodeClass.TRANSIENT, id="12345-unknown"),
    pytest.param(42003, CodeClass.TRANSIENT, id="42003-forbids-code-unknown-here"),
    pytest.param(-1, CodeClass.TRANSIENT, id="negative-unknown"),
]


@pytest.mark.parametrize(("code", "expected"), CODES)
def test_every_documented_code_is_classified(code: int, expected: CodeClass) -> None:
    assert classify_code(code) is expected


# --- settle -----------------------------------------------------------------------------------

PERMANENT_A = Failure("30006", "invalid stream id list", transient=False, attempts=1)
PERMANENT_A_AGAIN = Failure("30006", "invalid stream id list", transient=False, attempts=1)
PERMANENT_B = Failure("30004", "IsTest wrong", transient=False, attempts=1)
TRANSIENT = Failure("30003", "internal error", transient=True, attempts=8)


def _ids_by_code(letters: tuple[tuple[Failure, tuple[str, ...]], ...]) -> dict[str, list[str]]:
    return {failure.code: sorted(ids) for failure, ids in letters}


@pytest.mark.parametrize("final_attempt", [False, True], ids=["not-final", "final"])
def test_a_full_success_settles_with_nothing_to_do(final_attempt: bool) -> None:
    settlement = settle(DecisionOutcome(resumed=("a", "b")), final_attempt=final_attempt)
    assert settlement.dead_letters == ()
    assert settlement.retry is False


@pytest.mark.parametrize("final_attempt", [False, True], ids=["not-final", "final"])
def test_without_transient_failures_the_permanent_parts_are_dead_lettered_merged_by_code(
    final_attempt: bool,
) -> None:
    # Given a decision whose failed parts are all permanent, two of them with the same code
    outcome = DecisionOutcome(
        resumed=("ok",),
        failed=((PERMANENT_A, ("a1", "a2")), (PERMANENT_B, ("b1",)), (PERMANENT_A_AGAIN, ("a3",))),
    )
    # When it settles
    settlement = settle(outcome, final_attempt=final_attempt)
    # Then each code gets one dead letter holding every id that failed with it; nothing is retried
    assert settlement.retry is False
    assert len(settlement.dead_letters) == 2
    assert _ids_by_code(settlement.dead_letters) == {"30006": ["a1", "a2", "a3"], "30004": ["b1"]}


def test_a_transient_failure_before_the_final_attempt_hands_the_decision_back_with_no_letter() -> None:
    outcome = DecisionOutcome(failed=((PERMANENT_A, ("a",)), (TRANSIENT, ("t",))))
    settlement = settle(outcome, final_attempt=False)
    assert settlement.retry is True
    assert settlement.dead_letters == ()


def test_a_transient_failure_on_the_final_attempt_dead_letters_every_failed_part() -> None:
    outcome = DecisionOutcome(resumed=("ok",), failed=((PERMANENT_A, ("a",)), (TRANSIENT, ("t1", "t2"))))
    settlement = settle(outcome, final_attempt=True)
    assert settlement.retry is False
    assert _ids_by_code(settlement.dead_letters) == {"30006": ["a"], "30003": ["t1", "t2"]}
    assert "ok" not in [sid for _, ids in settlement.dead_letters for sid in ids]
