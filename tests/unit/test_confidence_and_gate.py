import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tierserve.policy.ladder import Answer, Ladder, Verdict, decide
from tierserve.policy.reason import ConfidenceCheck, Reason
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome
from tierserve.signals.confidence import quantile_confidence
from tierserve.validate import ValidationResult


def test_zero_quantile_is_the_least_likely_token() -> None:
    assert quantile_confidence([-0.1, -2.0, -0.5], 0.0) == pytest.approx(math.exp(-2.0))


def test_median_ignores_one_unlikely_token() -> None:
    assert quantile_confidence([-0.1, -3.0, -0.1], 0.5) == pytest.approx(math.exp(-0.1))


def test_no_tokens_means_no_confidence() -> None:
    assert quantile_confidence([], 0.1) == 0.0


def test_quantile_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="quantile"):
        quantile_confidence([-0.1], 1.5)


@given(st.lists(st.floats(min_value=-50, max_value=0), min_size=1), st.floats(0, 1))
def test_confidence_is_a_probability(logprobs: list[float], q: float) -> None:
    assert 0.0 <= quantile_confidence(logprobs, q) <= 1.0


@given(st.lists(st.floats(min_value=-50, max_value=0), min_size=1))
def test_lower_quantile_is_never_more_confident(logprobs: list[float]) -> None:
    assert quantile_confidence(logprobs, 0.1) <= quantile_confidence(logprobs, 0.5) + 1e-12


def gate(
    tier: str,
    confidence: float,
    threshold: float | None,
    validations: tuple[ValidationResult, ...],
    then: str,
) -> Verdict:
    """The kernel's verdict on a step of ``tier`` followed by ``then`` (a tier, an action, or
    'accept_last' for the last step of a route that accepts its last answer)."""
    step = LadderStepSpec(
        tier=tier, min_confidence=threshold, validators=[v.name for v in validations]
    )
    following: tuple[LadderStepSpec, ...] = ()
    if then in ("human_review", "safe_failure"):
        following = (LadderStepSpec(action=then),)
    elif then != "accept_last":
        following = (LadderStepSpec(tier=then),)
    verdict, _ = decide(Ladder(steps=(step, *following)), 0, Answer(confidence, validations))
    return verdict


def test_gate_escalates_below_threshold_with_reason() -> None:
    verdict = gate("small", 0.42, 0.60, (), "medium")
    assert verdict.outcome is Outcome.ESCALATE
    assert verdict.reason == "conf=0.42<0.60 => escalate medium"
    assert verdict.failure is FailureKind.LOW_CONFIDENCE


def test_gate_accepts_at_threshold() -> None:
    verdict = gate("small", 0.6, 0.6, (), "medium")
    assert verdict.outcome is Outcome.ACCEPT
    assert verdict.reason == "conf=0.60>=0.60 => accept small"


def test_gate_reason_never_prints_equal_numbers_for_a_strict_comparison() -> None:
    verdict = gate("small", 0.5999, 0.60, (), "medium")
    assert verdict.reason == "conf=0.5999<0.6000 => escalate medium"


def test_step_without_threshold_accepts_a_valid_answer() -> None:
    verdict = gate("large", 0.01, None, (ValidationResult("schema", True),), "medium")
    assert (verdict.outcome, verdict.reason) == (Outcome.ACCEPT, "conf=0.01 => accept large")
    assert verdict.why == Reason((ConfidenceCheck(0.01),), "accept large")


def test_validator_failure_escalates_even_when_confident() -> None:
    failed = (ValidationResult("schema", False, "invalid JSON at char 0"),)
    verdict = gate("medium", 0.99, 0.5, failed, "large")
    assert verdict.reason == "schema=fail(invalid JSON at char 0) => escalate large"
    assert verdict.failure is FailureKind.VALIDATOR and verdict.failed_validators == ("schema",)


def test_both_failures_are_named() -> None:
    failed = (ValidationResult("safety", False, "pii card"),)
    verdict = gate("large", 0.2, 0.5, failed, "human_review")
    assert verdict.outcome is Outcome.HUMAN_REVIEW
    assert verdict.reason == "safety=fail(pii card),conf=0.20<0.50 => human_review"


def test_exhausted_route_accepting_its_last_answer_says_so() -> None:
    verdict = gate("large", 0.2, 0.5, (), "accept_last")
    assert verdict.outcome is Outcome.ACCEPT and verdict.failure is FailureKind.LOW_CONFIDENCE
    assert verdict.reason == "conf=0.20<0.50, last step => accept"


def test_signals_for_offline_study_include_quantiles_mean_and_sum() -> None:
    from tierserve.signals.confidence import confidence_signals

    signals = confidence_signals([-0.1, -2.0, -0.3, -0.2])
    assert signals["conf_q0"] == pytest.approx(math.exp(-2.0), abs=1e-6)
    assert signals["conf_q50"] == pytest.approx(math.exp(-0.25), abs=1e-6)
    assert signals["mean_logprob"] == pytest.approx(-0.65)
    assert signals["sum_logprob"] == pytest.approx(-2.6)
    assert signals["tokens"] == 4
    assert confidence_signals([])["conf_q10"] == 0.0
