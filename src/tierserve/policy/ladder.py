"""The ladder kernel: what a ladder does after each step, as a pure state machine.

Serving (:mod:`tierserve.policy.runner`), counterfactual replay
(:mod:`tierserve.evaluate.replay`) and the offline sweeps and calibration
(:mod:`tierserve.evaluate.sweep`) all walk a ladder through :func:`start` and :func:`decide`,
so an offline evaluation reaches the decisions the gateway would, with the same reason codes.

Given a step and what it observed (an :class:`Answer`: confidence and validator results, or a
:class:`Failure`: timeout, error, context too long), :func:`decide` returns the step's
:class:`Verdict` and the ladder's next :data:`Move`: call another step, finish with an outcome,
or give up with no answer. Reason codes are short, machine-readable and stable, e.g.
``conf=0.42<0.60 => escalate medium`` or ``schema=fail(severity: ...) => escalate large``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome
from tierserve.validate import ValidationContext, ValidationResult

__all__ = [
    "Answer",
    "Failure",
    "Finish",
    "Generate",
    "Ladder",
    "Move",
    "NoAnswer",
    "Observation",
    "Verdict",
    "decide",
    "gate_cannot_reject",
    "start",
]

Exhausted = Literal["accept_last", "human_review", "safe_failure"]


@dataclass(frozen=True, slots=True)
class Ladder:
    """What one request climbs: the eligible steps and the route's contract around them."""

    steps: tuple[LadderStepSpec, ...]
    on_exhausted: Exhausted = "accept_last"
    json_schema: dict[str, Any] | None = None
    schema_name: str | None = None
    instructions: str | None = None
    """System text sent at every step (the schema and how to fill it)."""
    validation: ValidationContext = field(default_factory=ValidationContext)
    review_accepted: bool = False
    """Accepted answers are drafts: the outcome becomes human review, the draft is kept."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A tier answered: its confidence and the results of the step's validators."""

    confidence: float
    validations: tuple[ValidationResult, ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """A tier gave no answer: ``kind`` is TIMEOUT, ERROR or CONTEXT_LENGTH."""

    kind: FailureKind
    detail: str
    """The reason code's left side, e.g. ``timeout>300s`` or ``error=RuntimeError``."""


Observation = Answer | Failure


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str
    failure: FailureKind | None = None
    failed_validators: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Generate:
    """Call the tier of ``steps[index]`` under that step's contract."""

    index: int


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Outcome
    """ACCEPT, HUMAN_REVIEW or SAFE_FAILURE."""
    answer: int | None
    """The step whose answer is returned (accept) or kept as the reviewer's draft."""
    note: Verdict | None = None
    """A terminal step without a tier: a ladder action, or the review a route requires."""


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The last step gave no answer and the route accepts the last one: nothing to return."""

    failure: FailureKind


Move = Generate | Finish | NoAnswer


def start(ladder: Ladder) -> Move:
    first = ladder.steps[0]
    if first.action == "generate":
        return Generate(0)
    outcome = Outcome(first.action)
    return Finish(outcome, None, Verdict(outcome, f"ladder => {first.action}"))


def gate_cannot_reject(ladder: Ladder, index: int) -> bool:
    """True when any answer of this step is accepted as it is, so it may stream live."""
    step = ladder.steps[index]
    return (
        index == len(ladder.steps) - 1
        and ladder.on_exhausted == "accept_last"
        and not ladder.review_accepted
        and step.min_confidence is None
        and not step.validators
    )


def _pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers so that their printed order matches their real order."""
    for digits in (2, 4, 6):
        shown = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if shown[0] != shown[1] or value == threshold:
            return shown
    return f"{value!r}", f"{threshold!r}"


def _accepted(ladder: Ladder, index: int) -> Finish:
    if ladder.review_accepted:
        note = Verdict(Outcome.HUMAN_REVIEW, "route requires review => human_review")
        return Finish(Outcome.HUMAN_REVIEW, index, note)
    return Finish(Outcome.ACCEPT, index)


def _judge(step: LadderStepSpec, answer: Answer) -> tuple[str, FailureKind | None, list[str]]:
    """(the evidence part of the reason code, why the answer falls short, failed validators)."""
    wanted = set(step.validators)
    failed = [v for v in answer.validations if not v.passed and v.name in wanted]
    if step.min_confidence is None:
        confidence_code, confident = f"conf={answer.confidence:.2f}", True
    else:
        value, bar = _pair(answer.confidence, step.min_confidence)
        confident = answer.confidence >= step.min_confidence
        confidence_code = f"conf={value}{'>=' if confident else '<'}{bar}"
    names = [v.name for v in failed]
    if failed:
        codes = [v.code for v in failed]
        return (
            ",".join(codes if confident else [*codes, confidence_code]),
            FailureKind.VALIDATOR,
            names,
        )
    if not confident:
        return confidence_code, FailureKind.LOW_CONFIDENCE, names
    return confidence_code, None, names


def decide(ladder: Ladder, index: int, observation: Observation) -> tuple[Verdict, Move]:
    """The verdict on ``steps[index]`` given what it observed, and where the ladder goes next."""
    step = ladder.steps[index]
    failure: FailureKind
    failed: tuple[str, ...] = ()
    if isinstance(observation, Failure):
        why, failure = observation.detail, observation.kind
    else:
        why, short, names = _judge(step, observation)
        if short is None:
            return Verdict(Outcome.ACCEPT, f"{why} => accept {step.tier}"), _accepted(ladder, index)
        failure, failed = short, tuple(names)
    if index + 1 < len(ladder.steps):
        following = ladder.steps[index + 1]
        if following.action == "generate":
            reason = f"{why} => escalate {following.tier}"
            return Verdict(Outcome.ESCALATE, reason, failure, failed), Generate(index + 1)
        then: Exhausted = following.action
    else:
        then = ladder.on_exhausted
    if then == "accept_last":
        if isinstance(observation, Failure):
            verdict = Verdict(Outcome.SAFE_FAILURE, f"{why}, last step => no answer", failure)
            return verdict, NoAnswer(observation.kind)
        verdict = Verdict(Outcome.ACCEPT, f"{why}, last step => accept", failure, failed)
        return verdict, _accepted(ladder, index)
    outcome = Outcome(then)
    # A human reviewer gets the answer that fell short as a draft; a safe failure drops it.
    draft = index if outcome is Outcome.HUMAN_REVIEW and isinstance(observation, Answer) else None
    return Verdict(outcome, f"{why} => {then}", failure, failed), Finish(outcome, draft)
