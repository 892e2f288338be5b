"""Field thresholds of an extraction route, chosen on labelled extraction outcomes.

The input has one row per case and tier: the step the gateway recorded when the case was sent
to that tier alone (its field readings, validator results and cost, the decision log's own
:class:`~tierserve.policy.step.Step`) and which fields were right::

    {"id": "invoice-03", "split": "train", "tier": "small", "step": {...},
     "correct": {"total": true}}

A route's ladder is walked over those steps by :func:`~tierserve.evaluate.replay.replay_ladder`
(the serving kernel), once per candidate setting of the steps' ``min_field_confidence``. The
cheapest setting on the train split whose silent-wrong share is at most the target and whose
all-fields-right share is at least the strongest tier's alone is chosen, then reported on the
test split next to each tier alone.

Figures, per case: *all fields right* (an answer was returned and every field was right),
*field accuracy* (right fields over all fields; no answer counts every field wrong),
*silent wrong* (an answer with a wrong field returned without a flag: no uncertain field
marked), *flagged* (sent to review, failed safely, or returned with uncertain fields marked),
*escalated* (more than one tier called), and cost and upstream calls per case.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from tierserve.errors import ConfigError
from tierserve.evaluate.replay import LadderReplay, replay_ladder
from tierserve.policy.ladder import Ladder
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import Step

__all__ = [
    "FieldCase",
    "Gate",
    "choose_field_thresholds",
    "figures",
    "read_field_cases",
    "tier_alone",
    "tune",
    "with_agreement",
    "with_thresholds",
]

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


def read_field_cases(path: Path) -> list[FieldCase]:
    """Rows grouped by case; a malformed row is a one-line error naming the file and line."""
    steps: dict[str, dict[str, Step]] = {}
    correct: dict[str, dict[str, dict[str, bool]]] = {}
    splits: dict[str, str] = {}
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
    return [FieldCase(c, splits[c], steps[c], correct[c]) for c in sorted(steps)]


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


@dataclass(frozen=True, slots=True)
class _Scored:
    walked: LadderReplay
    delivered: bool
    all_right: bool
    right_fields: int
    fields: int

    @property
    def flagged(self) -> bool:
        return not self.delivered or bool(self.walked.uncertain_fields)


def _eligible(ladder: Ladder, case: FieldCase) -> Ladder:
    """The ladder without the tiers that refused this case, as the gateway's eligibility layer
    leaves them out."""
    steps = tuple(s for s in ladder.steps if s.tier is None or s.tier in case.steps)
    return replace(ladder, steps=steps)


def _score(ladder: Ladder, case: FieldCase) -> _Scored:
    fields = max(len(c) for c in case.correct.values())
    eligible = _eligible(ladder, case)
    if not any(s.action == "generate" for s in eligible.steps):
        return _Scored(LadderReplay("refused", (), 0.0), False, False, 0, fields)
    walked = replay_ladder(eligible, list(case.steps.values()))
    if walked.answered == "unknown":
        raise ConfigError(
            f"case {case.id!r}: {walked.reasons[-1]}",
            hint="collect every tier of the ladder for every case, under the same contract",
        )
    marks = case.correct.get(walked.answered)
    if marks is None:  # review, safe failure or no tier answered: nothing returned
        return _Scored(walked, False, False, 0, fields)
    right = sum(marks.values())
    return _Scored(walked, True, right == len(marks), right, fields)


def figures(ladder: Ladder, cases: Sequence[FieldCase]) -> dict[str, Any]:
    scored = [_score(ladder, case) for case in cases]
    n = len(scored)
    if n == 0:
        raise ConfigError("no cases in this split", hint="check the rows' split names")
    return {
        "cases": n,
        "all_fields_right": sum(s.all_right for s in scored) / n,
        "field_accuracy": sum(s.right_fields for s in scored) / sum(s.fields for s in scored),
        "silent_wrong": sum(s.delivered and not s.all_right and not s.flagged for s in scored) / n,
        "flagged": sum(s.flagged for s in scored) / n,
        "escalated": sum(s.walked.calls > 1 for s in scored) / n,
        "cost_per_case": sum(s.walked.cost for s in scored) / n,
        "calls_per_case": sum(s.walked.calls for s in scored) / n,
        "answered_by": dict(Counter(s.walked.answered for s in scored)),
    }


def tier_alone(ladder: Ladder, tier: str) -> Ladder:
    """One step on ``tier`` under the route's contract for it, without gates: what pinning the
    tier returns, judged by the same figures."""
    step = next(s for s in ladder.steps if s.tier == tier)
    bare = step.model_copy(update={"min_field_confidence": None, "min_confidence": None})
    return Ladder(steps=(bare.model_copy(update={"validators": []}),))


def choose_field_thresholds(
    ladder: Ladder,
    train: Sequence[FieldCase],
    *,
    max_silent_wrong: float,
    grid: Sequence[float] = GRID,
    gate: Gate = "min_field_confidence",
) -> dict[str, Any]:
    """The cheapest thresholds meeting the objective on ``train`` (ties: more right answers)."""
    strongest = [s.tier for s in ladder.steps if s.tier is not None][-1]
    floor = figures(tier_alone(ladder, str(strongest)), train)["all_fields_right"]
    generating = sum(s.action == "generate" for s in ladder.steps)
    best: tuple[tuple[float, ...], tuple[float, ...], dict[str, Any]] | None = None
    choices = [(*grid, SKIP)] * (generating - 1) + [tuple(grid)]
    for thresholds in itertools.product(*choices):
        scored = figures(with_thresholds(ladder, thresholds, gate), train)
        if scored["silent_wrong"] > max_silent_wrong or scored["all_fields_right"] < floor:
            continue
        # Cheapest, then most right; among equals the fewest silent wrong, then fewest flags.
        key = (
            round(scored["cost_per_case"], 12),
            -scored["all_fields_right"],
            scored["silent_wrong"],
            scored["flagged"],
        )
        if best is None or key < best[0]:
            best = (key, thresholds, scored)
    if best is None:
        raise ConfigError(
            f"no {gate} thresholds reach silent wrong <= {max_silent_wrong} with all fields right "
            f">= {floor:.3f} ({strongest} alone) on the train split",
            hint="raise --max-silent-wrong, or add a stronger step or a review step to the route",
        )
    tiers = [str(s.tier) for s in ladder.steps if s.tier is not None]
    return {
        "thresholds": dict(zip(tiers, best[1], strict=True)),
        "train": best[2],
        "train_all_fields_right_floor": floor,
    }


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
) -> dict[str, Any]:
    """Thresholds chosen on ``train`` and the figures they reach on ``test``; when no setting
    meets the objective, a note saying so instead of thresholds."""
    try:
        chosen = choose_field_thresholds(
            ladder, train, max_silent_wrong=max_silent_wrong, gate=gate
        )
    except ConfigError as unreachable:
        return {"thresholds": None, "train": None, "test": None, "note": unreachable.message}
    tuned = with_thresholds(ladder, list(chosen["thresholds"].values()), gate)
    return {**chosen, "test": figures(tuned, test), "note": None}
