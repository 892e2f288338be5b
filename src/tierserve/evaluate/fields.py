"""Field thresholds of an extraction route, chosen on labelled extraction outcomes.

The input has one row per case and tier: the step the gateway recorded when the case was sent
to that tier alone (its field readings, validator results and cost, the decision log's own
:class:`~tierserve.policy.step.Step`) and which fields were right::

    {"id": "invoice-03", "split": "train", "tier": "small", "step": {...},
     "correct": {"total": true}}

A route's ladder is walked over those steps by :func:`~tierserve.evaluate.replay.replay_ladder`
(the serving kernel), once per candidate setting of the steps' ``min_field_confidence``. The
settings on the train split whose silent-wrong share is at most the target and whose
all-fields-right share is at least the strongest tier's alone qualify; the one with the fewest
silently wrong answers below the strongest tier's cost is chosen (``prefer="safest"``; or the
cheapest), then reported on the test split next to each tier alone. A setting may add review
thresholds (``review_field_confidence``): on the fields that were silently wrong on train in
two cases or more (a pattern, not a one-off), the answering step flags them under a threshold
instead of escalating, for judgements a stronger tier gets no more right; they are added one at
a time, each the one leaving the fewest silent answers, then the fewest flags.

Figures, per case: *all fields right* (an answer was returned and every field was right),
*field accuracy* (right fields over all fields; no answer counts every field wrong),
*silent wrong* (an answer returned with a wrong field that is not among its uncertain fields:
flagging another field does not count), *flagged* (sent to review, failed safely, or returned
with uncertain fields marked), *escalated* (more than one tier called), and cost and upstream
calls per case.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from tierserve.errors import ConfigError
from tierserve.evaluate.field_figures import FieldChoice, FieldFigures, FieldTuning, Review
from tierserve.evaluate.replay import LadderReplay, replay_ladder
from tierserve.policy.ladder import Ladder
from tierserve.policy.spec import LadderStepSpec, Policy
from tierserve.policy.step import Step
from tierserve.policy.versions import with_steps
from tierserve.signals.fields import covers

__all__ = [
    "FieldCase",
    "Gate",
    "Prefer",
    "choose_field_thresholds",
    "figures",
    "read_field_cases",
    "tier_alone",
    "tune",
    "unmarked",
    "with_agreement",
    "with_review",
    "with_review_thresholds",
    "with_thresholds",
]

REVIEW_GRID = (0.6, 0.7, 0.8, 0.9)
"""Review thresholds tried per (tier, field) when a setting keeps too many wrong fields silent."""
REVIEWS_AT_MOST = 3
"""Review thresholds added to one setting at the most: a few named fields, not every field."""
REVIEW_MIN_CASES = 2
"""A (tier, field) gets a review threshold only when it was silently wrong in this many train
cases at least: a recurring error, not a one-off the threshold would be fitted to."""

GRID = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
"""Field thresholds tried per step (0: the step has no field gate). Every step but the last
may also be skipped (``inf``: no answer of it is trusted, so calling it only costs)."""
SKIP = math.inf


@dataclass(frozen=True, slots=True)
class FieldCase:
    id: str
    split: str
    steps: Mapping[str, Step]
    """The recorded step of each tier this case was sent to."""
    correct: Mapping[str, Mapping[str, bool]]
    """Per tier: each expected field, right or not."""
    family: str = ""
    """The schema family (invoice, contact, ...): what leave-one-family-out holds out."""


def read_field_cases(path: Path) -> list[FieldCase]:
    """Rows grouped by case; a malformed row is a one-line error naming the file and line."""
    steps: dict[str, dict[str, Step]] = {}
    correct: dict[str, dict[str, dict[str, bool]]] = {}
    splits: dict[str, str] = {}
    families: dict[str, str] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}", hint="check the path") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            case, tier = str(row["id"]), str(row["tier"])
            splits[case] = str(row["split"])
            families[case] = str(row.get("kind", ""))
            if row.get("refused"):
                continue  # the tier may not serve this case (personal data on small)
            steps.setdefault(case, {})[tier] = Step.model_validate(row["step"])
            correct.setdefault(case, {})[tier] = {k: bool(v) for k, v in row["correct"].items()}
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(
                f"{path}:{number}: not a field-outcome row ({type(error).__name__}: {error})"[:300],
                hint="each line needs id, split, tier, step (a decision-log step) and correct",
            ) from None
    if not steps:
        raise ConfigError(f"{path} holds no rows", hint="collect them with the extraction bench")
    return [FieldCase(c, splits[c], steps[c], correct[c], families[c]) for c in sorted(steps)]


Gate = Literal["min_field_confidence", "min_confidence"]
"""Which threshold is tuned: per field (this module's point) or on the whole answer."""


def with_thresholds(
    ladder: Ladder, thresholds: Sequence[float], gate: Gate = "min_field_confidence"
) -> Ladder:
    """``ladder`` with each generating step's ``gate`` threshold replaced (0: no such gate) and
    the other gate off, so the two signals are compared on their own."""
    steps: list[LadderStepSpec] = []
    remaining = iter(thresholds)
    for step in ladder.steps:
        if step.action == "generate":
            value = next(remaining)
            if value == SKIP:
                continue
            other = "min_confidence" if gate == "min_field_confidence" else "min_field_confidence"
            step = step.model_copy(update={gate: value or None, other: None})
        steps.append(step)
    return Ladder(
        steps=tuple(steps),
        on_exhausted=ladder.on_exhausted,
        review_accepted=ladder.review_accepted,
    )


def with_review(ladder: Ladder, review: Review) -> Ladder:
    """``ladder`` with each generating step's review thresholds replaced by ``review``'s for
    its tier (none where it names none)."""
    reviewed = _reviewed_by(review)
    steps = tuple(reviewed(s) if s.action == "generate" else s for s in ladder.steps)
    return replace(ladder, steps=steps)


def _reviewed_by(review: Review) -> Callable[[LadderStepSpec], LadderStepSpec]:
    def reviewed(step: LadderStepSpec) -> LadderStepSpec:
        thresholds = dict(review.get(str(step.tier), {}))
        return step.model_copy(update={"review_field_confidence": thresholds})

    return reviewed


def unmarked(wrong: Sequence[str], uncertain: Sequence[str]) -> tuple[str, ...]:
    """The ``wrong`` fields (names of the answer's fields) that none of its ``uncertain``
    fields marks (a field, or one under it): what a caller would take as right."""
    return tuple(name for name in wrong if not any(covers(name, u) for u in uncertain))


@dataclass(frozen=True, slots=True)
class _Scored:
    walked: LadderReplay
    delivered: bool
    wrong: tuple[str, ...]
    """The returned answer's wrong fields (every field when nothing was returned)."""
    right_fields: int
    fields: int

    @property
    def all_right(self) -> bool:
        return self.delivered and not self.wrong

    @property
    def flagged(self) -> bool:
        return not self.delivered or bool(self.walked.uncertain_fields)

    @property
    def silent(self) -> tuple[str, ...]:
        """Wrong fields returned without being marked uncertain."""
        return unmarked(self.wrong, self.walked.uncertain_fields) if self.delivered else ()


def _eligible(ladder: Ladder, case: FieldCase) -> Ladder:
    """The ladder without the tiers that refused this case, as the gateway's eligibility layer
    leaves them out."""
    steps = tuple(s for s in ladder.steps if s.tier is None or s.tier in case.steps)
    return replace(ladder, steps=steps)


def _score(ladder: Ladder, case: FieldCase) -> _Scored:
    fields = max(len(c) for c in case.correct.values())
    eligible = _eligible(ladder, case)
    if not any(s.action == "generate" for s in eligible.steps):
        return _Scored(LadderReplay("refused", (), 0.0), False, (), 0, fields)
    walked = replay_ladder(eligible, list(case.steps.values()))
    if walked.answered == "unknown":
        raise ConfigError(
            f"case {case.id!r}: {walked.reasons[-1]}",
            hint="collect every tier of the ladder for every case, under the same contract",
        )
    marks = case.correct.get(walked.answered)
    if marks is None:  # review, safe failure or no tier answered: nothing returned
        return _Scored(walked, False, (), 0, fields)
    wrong = tuple(name for name, right in marks.items() if not right)
    return _Scored(walked, True, wrong, len(marks) - len(wrong), fields)


def figures(ladder: Ladder, cases: Sequence[FieldCase]) -> FieldFigures:
    return _summary([_score(ladder, case) for case in cases])


def _summary(scored: Sequence[_Scored]) -> FieldFigures:
    n = len(scored)
    if n == 0:
        raise ConfigError("no cases in this split", hint="check the rows' split names")
    return FieldFigures(
        cases=n,
        all_fields_right=sum(s.all_right for s in scored) / n,
        field_accuracy=sum(s.right_fields for s in scored) / sum(s.fields for s in scored),
        silent_wrong=sum(bool(s.silent) for s in scored) / n,
        flagged=sum(s.flagged for s in scored) / n,
        escalated=sum(s.walked.calls > 1 for s in scored) / n,
        cost_per_case=sum(s.walked.cost for s in scored) / n,
        calls_per_case=sum(s.walked.calls for s in scored) / n,
        answered_by=dict(Counter(s.walked.answered for s in scored)),
    )


def tier_alone(ladder: Ladder, tier: str) -> Ladder:
    """One step on ``tier`` under the route's contract for it, without gates: what pinning the
    tier returns, judged by the same figures."""
    step = next(s for s in ladder.steps if s.tier == tier)
    bare = step.model_copy(
        update={"min_field_confidence": None, "min_confidence": None, "review_field_confidence": {}}
    )
    return Ladder(steps=(bare.model_copy(update={"validators": []}),))


Prefer = Literal["safest", "cheapest"]
"""What the thresholds are chosen for, among the settings meeting the objective on train:
``safest``: the fewest silently wrong answers below the strongest tier's cost (then the fewest
flags, then the least cost); ``cheapest``: the least cost (then the most right answers)."""


def choose_field_thresholds(
    ladder: Ladder,
    train: Sequence[FieldCase],
    *,
    max_silent_wrong: float,
    grid: Sequence[float] = GRID,
    gate: Gate = "min_field_confidence",
    reviews: bool = True,
    prefer: Prefer = "safest",
) -> FieldChoice:
    """The thresholds meeting the objective on ``train`` that ``prefer`` says are best;
    ``reviews``: a setting may add review thresholds (see the module's doc)."""
    strongest = str([s.tier for s in ladder.steps if s.tier is not None][-1])
    alone = figures(tier_alone(ladder, strongest), train)
    floor = alone.all_fields_right
    generating = sum(s.action == "generate" for s in ladder.steps)
    best: tuple[tuple[float, ...], tuple[float, ...], FieldFigures, Review] | None = None
    choices = [(*grid, SKIP)] * (generating - 1) + [tuple(grid)]
    for thresholds in itertools.product(*choices):
        tuned = with_thresholds(ladder, thresholds, gate)
        scored = figures(tuned, train)
        if scored.all_fields_right < floor:
            continue
        if prefer == "safest" and scored.cost_per_case >= alone.cost_per_case:
            continue
        review: Review = {}
        if reviews and (prefer == "safest" or scored.silent_wrong > max_silent_wrong):
            review, scored = _reviewed(
                tuned, train, 0.0 if prefer == "safest" else max_silent_wrong
            )
        if scored.silent_wrong > max_silent_wrong:
            continue
        cost = round(scored.cost_per_case, 12)
        right, silent, flagged = scored.all_fields_right, scored.silent_wrong, scored.flagged
        key = (
            (silent, flagged, cost, -right)
            if prefer == "safest"
            else (cost, -right, silent, flagged)
        )
        if best is None or key < best[0]:
            best = (key, thresholds, scored, review)
    if best is None:
        raise ConfigError(
            f"no {gate} thresholds reach silent wrong <= {max_silent_wrong} with all fields right "
            f">= {floor:.3f} ({strongest} alone)"
            + (f" below {strongest}'s cost" if prefer == "safest" else "")
            + " on the train split",
            hint="raise --max-silent-wrong, or add a stronger step or a review step to the route",
        )
    tiers = [str(s.tier) for s in ladder.steps if s.tier is not None]
    return FieldChoice(
        thresholds=dict(zip(tiers, best[1], strict=True)),
        review=best[3],
        train=best[2],
        train_all_fields_right_floor=floor,
    )


def _reviewed(
    ladder: Ladder, train: Sequence[FieldCase], target: float
) -> tuple[Review, FieldFigures]:
    """Review thresholds on the fields ``ladder`` kept silently wrong on ``train``, added one
    at a time (the fewest silent answers, then the fewest flags) until the silent-wrong share
    is at most ``target`` or nothing more helps; the review and the figures it reaches."""
    review: Review = {}
    cases = [_score(ladder, case) for case in train]
    scored = _summary(cases)
    for _ in range(REVIEWS_AT_MOST):
        if scored.silent_wrong <= target:
            break
        silent = Counter((s.walked.answered, name) for s in cases for name in s.silent)
        # A field silently wrong once is noise; one wrong again and again is a pattern.
        recurring = sorted(pair for pair, count in silent.items() if count >= REVIEW_MIN_CASES)
        best: tuple[tuple[float, float], Review, list[_Scored], FieldFigures] | None = None
        for (tier, name), threshold in itertools.product(recurring, REVIEW_GRID):
            tried = {**review, tier: {**review.get(tier, {}), name: threshold}}
            reviewed = with_review(ladder, tried)
            found_cases = [_score(reviewed, case) for case in train]
            found = _summary(found_cases)
            key = (found.silent_wrong, found.flagged)
            if best is None or key < best[0]:
                best = (key, tried, found_cases, found)
        if best is None or best[0][0] >= scored.silent_wrong:
            break
        review, cases, scored = best[1], best[2], best[3]
    return review, scored


def with_agreement(ladder: Ladder) -> Ladder:
    """``ladder`` with a second opinion on every step after the first (accept_on_agreement)."""
    steps = tuple(
        s.model_copy(update={"accept_on_agreement": True}) if i > 0 and s.tier else s
        for i, s in enumerate(ladder.steps)
    )
    return replace(ladder, steps=steps)


def tune(
    ladder: Ladder,
    train: Sequence[FieldCase],
    test: Sequence[FieldCase],
    *,
    max_silent_wrong: float,
    gate: Gate = "min_field_confidence",
    reviews: bool = True,
    prefer: Prefer = "safest",
) -> FieldTuning:
    """Thresholds chosen on ``train`` and the figures they reach on ``test``; when no setting
    meets the objective, a note saying so instead of thresholds."""
    try:
        chosen = choose_field_thresholds(
            ladder,
            train,
            max_silent_wrong=max_silent_wrong,
            gate=gate,
            reviews=reviews,
            prefer=prefer,
        )
    except ConfigError as unreachable:
        return FieldTuning(note=unreachable.message)
    tuned = with_thresholds(ladder, list(chosen.thresholds.values()), gate)
    tuned = with_review(tuned, chosen.review)
    return FieldTuning(**dict(chosen), test=figures(tuned, test))


def with_review_thresholds(policy: Policy, route: str, review: Review) -> Policy:
    """``policy`` with ``route``'s generating steps given the chosen review thresholds, per
    tier (a tier ``review`` names nothing for loses those it had)."""
    return with_steps(policy, route, _reviewed_by(review))
