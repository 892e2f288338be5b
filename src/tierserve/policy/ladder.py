"""The ladder kernel: what a ladder does after each step, as a pure state machine.

Serving (:mod:`tierserve.policy.runner`), counterfactual replay
(:mod:`tierserve.evaluate.replay`) and the offline sweeps and calibration
(:mod:`tierserve.evaluate.sweep`) all walk a ladder with one :class:`LadderWalk` (over
:func:`start` and :func:`decide`): each supplies what a step observed (a live generation, a
logged step, an outcome row), so an offline evaluation reaches the decisions the gateway
would, with the same reason codes.

Given a step and what it observed (an :class:`Answer`: confidence and validator results, or a
:class:`Failure`: timeout, error, context too long), :func:`decide` returns the step's
:class:`Verdict` and the ladder's next :data:`Move`: call another step, finish with an outcome,
or give up with no answer. Reason codes are short, machine-readable and stable, e.g.
``conf=0.42<0.60 => escalate medium`` or ``schema=fail(severity: ...) => escalate large``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tierserve.policy.reason import (
    Agreement,
    Cause,
    ConfidenceCheck,
    Evidence,
    FieldCheck,
    Reason,
    ReviewMarks,
    TierFailed,
    ValidatorCheck,
)
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome
from tierserve.signals.fields import FieldReading, field_pattern
from tierserve.validate import ValidationContext, ValidationResult

__all__ = [
    "Answer",
    "Failure",
    "Finish",
    "Generate",
    "Ladder",
    "LadderWalk",
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
    callers_schema: bool = False
    """The schema came with the request: its field names are the caller's text."""
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
    fields: tuple[FieldReading, ...] = ()
    """Per-field confidence of a JSON answer (empty for other answers)."""


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
    why: Reason
    failure: FailureKind | None = None
    failed_validators: tuple[str, ...] = ()
    uncertain_fields: tuple[str, ...] = ()
    """Fields of the answer in doubt (under the field threshold, named by a failed validator,
    or disputed by a second opinion)."""

    @property
    def reason(self) -> str:
        """The reason code, as the caller sees it."""
        return self.why.render()


@dataclass(frozen=True, slots=True)
class Generate:
    """Call the tier of ``steps[index]`` under that step's contract."""

    index: int
    doubted: tuple[FieldReading, ...] = ()
    """The fields the step before escalated on: what a second-opinion step compares."""


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
    return Finish(outcome, None, Verdict(outcome, Reason((Cause("ladder"),), first.action)))


def gate_cannot_reject(ladder: Ladder, index: int) -> bool:
    """True when any answer of this step is accepted as it is, so it may stream live."""
    step = ladder.steps[index]
    return (
        index == len(ladder.steps) - 1
        and ladder.on_exhausted == "accept_last"
        and not ladder.review_accepted
        and step.min_confidence is None
        and not step.field_bars
        and not step.accept_on_agreement
        and not step.validators
    )


def _accepted(ladder: Ladder, index: int) -> Finish:
    if ladder.review_accepted:
        why = Reason((Cause("route requires review"),), "human_review")
        note = Verdict(Outcome.HUMAN_REVIEW, why)
        return Finish(Outcome.HUMAN_REVIEW, index, note)
    return Finish(Outcome.ACCEPT, index)


@dataclass(frozen=True, slots=True)
class _Judgement:
    evidence: tuple[Evidence, ...]
    failure: FailureKind | None
    failed_validators: tuple[str, ...]
    uncertain: tuple[str, ...]
    doubted: tuple[FieldReading, ...]
    """Fields under the threshold, passed to a second-opinion step."""


def _unique(paths: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(paths))


def _judge(step: LadderStepSpec, answer: Answer, doubted: tuple[FieldReading, ...]) -> _Judgement:
    wanted = set(step.validators)
    failed = [v for v in answer.validations if not v.passed and v.name in wanted]
    confidence = ConfidenceCheck(answer.confidence, step.min_confidence)
    bar_of = {r.path: step.field_threshold(field_pattern(r.path), r.kind) for r in answer.fields}
    low = [r for r in answer.fields if r.confidence < (bar_of[r.path] or 0.0)]
    disputed: list[str] = []
    agreement: Agreement | None = None
    if doubted and step.accept_on_agreement:
        mine = {r.path: r.digest for r in answer.fields}
        disputed = [d.path for d in doubted if mine.get(d.path) != d.digest]
        agreed = {d.path for d in doubted} - set(disputed)
        low = [r for r in low if r.path not in agreed]
        agreement = Agreement(tuple(disputed), tuple(sorted(agreed)))
    field_check: FieldCheck | None = None
    if step.field_bars:
        shown = tuple((r.path, r.confidence, bar_of[r.path] or 0.0) for r in low)
        field_check = FieldCheck(step.field_bars, shown)
    gated = {r.path for r in low}
    review = [
        r
        for r in answer.fields
        if r.path not in gated
        and r.confidence < step.review_threshold(field_pattern(r.path), r.kind)
    ]
    marks = ReviewMarks(tuple((r.path, r.confidence) for r in review)) if review else None
    uncertain = _unique(
        [f for v in failed for f in v.fields] + disputed + [r.path for r in low + review]
    )
    if failed:
        kind: FailureKind | None = FailureKind.VALIDATOR
    elif disputed:
        kind = FailureKind.DISAGREEMENT
    elif low:
        kind = FailureKind.LOW_FIELD_CONFIDENCE
    elif not confidence.passed:
        kind = FailureKind.LOW_CONFIDENCE
    else:
        kind = None
    evidence: tuple[Evidence | None, ...]
    if kind is None:
        evidence = (confidence, agreement, field_check, marks)
    else:
        evidence = (
            *(ValidatorCheck(v) for v in failed),
            agreement if disputed else None,
            field_check if low else None,
            None if confidence.passed else confidence,
        )
    passed_on = tuple(low) if kind is FailureKind.LOW_FIELD_CONFIDENCE else ()
    return _Judgement(
        tuple(item for item in evidence if item is not None),
        kind,
        tuple(v.name for v in failed),
        uncertain,
        passed_on,
    )


def decide(
    ladder: Ladder, index: int, observation: Observation, doubted: tuple[FieldReading, ...] = ()
) -> tuple[Verdict, Move]:
    """The verdict on ``steps[index]`` given what it observed, and where the ladder goes next.
    ``doubted``: the fields the step before escalated on (:attr:`Generate.doubted`)."""
    step = ladder.steps[index]
    failure: FailureKind
    failed: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    passed_on: tuple[FieldReading, ...] = ()
    evidence: tuple[Evidence, ...]
    if isinstance(observation, Failure):
        evidence, failure = (TierFailed(observation.detail),), observation.kind
    else:
        judged = _judge(step, observation, doubted)
        evidence = judged.evidence
        if judged.failure is None:
            # Accepted, with the fields under their review threshold marked for a person.
            why = Reason(evidence, f"accept {step.tier}")
            verdict = Verdict(Outcome.ACCEPT, why, uncertain_fields=judged.uncertain)
            return verdict, _accepted(ladder, index)
        failure, failed = judged.failure, judged.failed_validators
        uncertain, passed_on = judged.uncertain, judged.doubted
    if index + 1 < len(ladder.steps):
        following = ladder.steps[index + 1]
        if following.action == "generate":
            why = Reason(evidence, f"escalate {following.tier}")
            verdict = Verdict(Outcome.ESCALATE, why, failure, failed, uncertain)
            return verdict, Generate(index + 1, passed_on)
        then: Exhausted = following.action
    else:
        then = ladder.on_exhausted
    if then == "accept_last":
        if isinstance(observation, Failure):
            why = Reason(evidence, "no answer", last_step=True)
            return Verdict(Outcome.SAFE_FAILURE, why, failure), NoAnswer(observation.kind)
        why = Reason(evidence, "accept", last_step=True)
        verdict = Verdict(Outcome.ACCEPT, why, failure, failed, uncertain)
        return verdict, _accepted(ladder, index)
    outcome = Outcome(then)
    # A human reviewer gets the answer that fell short as a draft; a safe failure drops it.
    draft = index if outcome is Outcome.HUMAN_REVIEW and isinstance(observation, Answer) else None
    verdict = Verdict(outcome, Reason(evidence, then), failure, failed, uncertain)
    return verdict, Finish(outcome, draft)


class LadderWalk:
    """One walk up a ladder: where it stands, and each step's verdict so far. The walker asks
    :attr:`next_step` for the step to observe and hands the observation to :meth:`observe`;
    the kernel decides what comes next."""

    def __init__(self, ladder: Ladder) -> None:
        self.ladder = ladder
        self.move: Move = start(ladder)
        self.verdicts: list[Verdict] = []

    @property
    def next_step(self) -> Generate | None:
        """The step to call next; None once the walk has ended."""
        return self.move if isinstance(self.move, Generate) else None

    def observe(self, observation: Observation) -> Verdict:
        """The verdict on the current step given ``observation``; the walk moves on."""
        move = self.move
        if not isinstance(move, Generate):
            raise RuntimeError(f"the walk has ended ({move}): nothing to observe")
        verdict, self.move = decide(self.ladder, move.index, observation, move.doubted)
        self.verdicts.append(verdict)
        return verdict

    @property
    def end(self) -> Finish | NoAnswer:
        move = self.move
        if isinstance(move, Generate):
            raise RuntimeError("the walk has not ended: a step is still to be observed")
        return move
