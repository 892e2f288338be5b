"""A ladder per question kind, chosen together on labelled outcomes (``eval calibrate --by-kind``).

The embedded tiers differ by kind of question: on the general set the medium tier (the large
tier's model quantized to 4 bits) loses facts but hardly any arithmetic, and the large tier is
no better than medium at short reasoning. One cascade for all of them pays for tiers that do
not help. Here:

1. a kind classifier (a multinomial logistic regression over the sentence embedding of the part
   of the prompt that differs) learns the rows' ``labels.kind`` on the train split; its
   out-of-fold predictions there decide which rows each kind's ladder will see, as serving will;
2. for each kind, every ladder shape (any cheapest-first subsequence of the tiers) and every
   threshold on the signal's grid is walked through the serving kernel over that kind's train
   rows, keeping the cost-quality frontier;
3. one ladder per kind is chosen jointly for the objective over the whole train split
   (e.g. the cheapest combination keeping top-tier-only quality), then reported on the test
   split with the classifier fitted on all train rows.

Rows whose most likely kind is below ``min_probability`` have no kind; their ladder is chosen
the same way (the route without ``kinds`` serves them).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import Objective
from tierserve.evaluate.figures import (
    KindCalibrationReport,
    KindClassifierFigures,
    KindFigures,
    KindsWithoutALadder,
    KindTest,
    PromptViewFigures,
    RoutedAgainstTop,
    RoutedFigures,
)
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet
from tierserve.evaluate.sweep import CascadeChoice, baselines, run_cascade
from tierserve.policy.kinds import KindModel, QuestionKindsSpec
from tierserve.policy.spec import LadderStepSpec, Policy, RouteSpec
from tierserve.policy.versions import route_named
from tierserve.prompt_models.encoder import Encoder, PromptView

__all__ = ["KindClassifier", "KindLadder", "choose_kind_ladders", "kind_ladder_choices"]

NO_KIND = ""
"""The group of rows the classifier gives no kind (served by the route without ``kinds``)."""
MIN_KIND_ROWS = 30
"""Train rows a kind needs for a ladder of its own: with fewer, one row moves its shares by more
than three points, and the ladder would fit those rows rather than the kind."""


@dataclass(frozen=True, slots=True)
class KindLadder:
    """A cheapest-first subsequence of the tiers; ``thresholds``: one per tier but the last."""

    tiers: tuple[str, ...]
    thresholds: tuple[float, ...]

    def describe(self) -> str:
        gates = [f"{t}>={x:.4g}" for t, x in zip(self.tiers, self.thresholds, strict=False)]
        return " -> ".join([*gates, self.tiers[-1]])


class KindClassifier:
    """Which kind a prompt is: multinomial logistic regression over its embedding."""

    def __init__(self, encoder: Encoder, model: Any, view: PromptView, min_probability: float):
        self.encoder = encoder
        self.model = model
        self.view = view
        self.min_probability = min_probability

    @staticmethod
    def _fit(vectors: np.ndarray, labels: Sequence[str]) -> Any:
        from sklearn.linear_model import LogisticRegression

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return LogisticRegression(max_iter=3000, C=1.0).fit(vectors, list(labels))

    @classmethod
    def train(
        cls, rows: Sequence[OutcomeRow], encoder: Encoder, min_probability: float
    ) -> KindClassifier:
        labels = _kinds(rows)
        prompts = [row.prompt for row in rows]
        view = PromptView.learn(prompts)
        return cls(encoder, cls._fit(view.embed(encoder, prompts), labels), view, min_probability)

    def _decided(self, probabilities: np.ndarray, classes: Sequence[str]) -> list[str]:
        best = probabilities.argmax(axis=1)
        return [
            str(classes[b]) if p[b] >= self.min_probability else NO_KIND
            for p, b in zip(probabilities, best, strict=True)
        ]

    def predict(self, prompts: Sequence[str]) -> list[str]:
        """Each prompt's kind, or NO_KIND when the most likely is below ``min_probability``."""
        probabilities = self.model.predict_proba(self.view.embed(self.encoder, prompts))
        return self._decided(probabilities, self.model.classes_)

    def cross_fitted(self, rows: Sequence[OutcomeRow], folds: int = 5) -> list[str]:
        """Each train row's kind from a classifier fitted on the other folds."""
        labels = _kinds(rows)
        vectors = self.view.embed(self.encoder, [row.prompt for row in rows])
        fold = np.arange(len(rows)) % folds
        found = [NO_KIND] * len(rows)
        for k in range(folds):
            held = np.flatnonzero(fold == k)
            model = self._fit(vectors[fold != k], [labels[i] for i in np.flatnonzero(fold != k)])
            decided = self._decided(model.predict_proba(vectors[held]), model.classes_)
            for index, kind in zip(held, decided, strict=True):
                found[index] = kind
        return found

    def served(self) -> QuestionKindsSpec:
        """The classifier as a policy's ``question_kinds`` serves it: one linear score per
        kind, whose softmax is the model's probabilities."""
        coef, intercept = np.asarray(self.model.coef_), np.asarray(self.model.intercept_)
        if len(self.model.classes_) == 2:
            # Two kinds: scikit-learn keeps one score, the second kind's log-odds; the first
            # kind's score is then 0 (softmax of (0, z) is the sigmoid of z).
            coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
            intercept = np.array([0.0, intercept[0]])
        return QuestionKindsSpec(
            encoder=self.encoder.name,
            prefix=self.view.prefix,
            suffix=self.view.suffix,
            kinds={
                str(kind): KindModel(weights=[float(w) for w in weights], bias=float(bias))
                for kind, weights, bias in zip(self.model.classes_, coef, intercept, strict=True)
            },
        )


def _kinds(rows: Sequence[OutcomeRow]) -> list[str]:
    missing = [row.id for row in rows if not row.labels.kind]
    if missing:
        raise ConfigError(
            f"{len(missing)} rows have no labels.kind (first: {missing[0]!r})",
            hint="collect a task set that labels kinds (`eval collect general`), or drop --by-kind",
        )
    kinds = sorted({str(row.labels.kind) for row in rows})
    if len(kinds) < 2:
        raise ConfigError(f"the train split has one kind ({kinds}); nothing to tell apart")
    return [str(row.labels.kind) for row in rows]


def _on(outcomes: OutcomeSet, tiers: Sequence[str]) -> OutcomeSet:
    """The rows with only ``tiers``' outcomes: what a ladder of those tiers can see."""
    rows = [
        r.model_copy(update={"outcomes": {t: r.outcomes[t] for t in tiers}}) for r in outcomes.rows
    ]
    return OutcomeSet(tuple(rows), tuple(tiers))


def walk(outcomes: OutcomeSet, signal: str, ladder: KindLadder) -> list[CascadeChoice]:
    """``ladder`` over ``outcomes`` through the serving kernel."""
    return run_cascade(_on(outcomes, ladder.tiers), signal, ladder.thresholds)


def kind_ladder_choices(tiers: Sequence[str], grid: Sequence[float]) -> list[KindLadder]:
    """Every cheapest-first subsequence of ``tiers`` with every threshold of ``grid`` (finite
    values: skipping a tier is a shape of its own)."""
    finite = [g for g in grid if np.isfinite(g)]
    found = []
    for size in range(1, len(tiers) + 1):
        for shape in itertools.combinations(tiers, size):
            for gates in itertools.product(finite, repeat=size - 1):
                found.append(KindLadder(shape, tuple(gates)))
    return found


@dataclass(frozen=True, slots=True)
class _Point:
    quality: float
    cost: float
    ladder: KindLadder


def _frontier(outcomes: OutcomeSet, signal: str, ladders: Sequence[KindLadder]) -> list[_Point]:
    """The ladders no other beats on both total quality and total cost over ``outcomes``."""
    points = []
    seen: dict[tuple[str, ...], OutcomeSet] = {}  # one view per shape, not one per threshold
    for ladder in ladders:
        if ladder.tiers not in seen:
            seen[ladder.tiers] = _on(outcomes, ladder.tiers)
        view = seen[ladder.tiers]
        choices = run_cascade(view, signal, ladder.thresholds)
        points.append(_Point(sum(c.quality for c in choices), sum(c.cost for c in choices), ladder))
    points.sort(key=lambda p: (p.cost, -p.quality, len(p.ladder.tiers)))
    kept: list[_Point] = []
    for point in points:
        if not kept or point.quality > kept[-1].quality + 1e-12:
            kept.append(point)
    return kept


def _group(outcomes: OutcomeSet, kinds: Sequence[str]) -> dict[str, OutcomeSet]:
    rows: dict[str, list[OutcomeRow]] = {}
    for row, kind in zip(outcomes.rows, kinds, strict=True):
        rows.setdefault(kind, []).append(row)
    return {kind: OutcomeSet(tuple(group), outcomes.tiers) for kind, group in rows.items()}


def choose_kind_ladders(
    train: OutcomeSet,
    kinds: Sequence[str],
    signal: str,
    objective: Objective,
    grid: Sequence[float],
) -> dict[str, KindLadder]:
    """One ladder per kind (``kinds``: each train row's predicted kind) that together best meet
    ``objective`` over the whole train split."""
    groups = _group(train, kinds)
    ladders = kind_ladder_choices(train.tiers, grid)
    fronts = {kind: _frontier(group, signal, ladders) for kind, group in groups.items()}
    n = len(train.rows)
    top = train.tiers[-1]
    floor = (objective.quality_share or 0.0) * sum(r.outcomes[top].quality for r in train.rows)
    best: tuple[tuple[float, float], tuple[_Point, ...]] | None = None
    names = sorted(fronts)
    for combo in itertools.product(*(fronts[k] for k in names)):
        quality, cost = sum(p.quality for p in combo), sum(p.cost for p in combo)
        if objective.quality_share is not None:
            if quality < floor - 1e-9:
                continue
            key = (cost, -quality)
        else:
            assert objective.max_cost is not None
            if cost / n > objective.max_cost:
                continue
            key = (-quality, cost)
        if best is None or key < best[0]:
            best = (key, combo)
    if best is None:
        raise ConfigError(
            f"no ladders per kind meet the objective ({objective.describe()}) on train"
        )
    return {kind: point.ladder for kind, point in zip(names, best[1], strict=True)}


def routed(
    outcomes: OutcomeSet, kinds: Sequence[str], signal: str, ladders: dict[str, KindLadder]
) -> RoutedFigures:
    """Quality, cost and upstream calls per request of ``ladders`` over ``outcomes``. A row of
    a kind without a ladder of its own climbs the ladder of rows without a kind, as the gateway
    sends it to the route without kinds (the top tier alone when there is none either)."""
    top = ladders.get(NO_KIND, KindLadder((outcomes.tiers[-1],), ()))
    quality = cost = calls = 0.0
    answered: dict[str, int] = {}
    per_kind: dict[str, KindFigures] = {}
    for kind, group in _group(outcomes, kinds).items():
        choices = walk(group, signal, ladders.get(kind, top))
        q, c = sum(x.quality for x in choices), sum(x.cost for x in choices)
        quality, cost, calls = quality + q, cost + c, calls + sum(len(x.tried) for x in choices)
        for choice in choices:
            answered[choice.answered_by] = answered.get(choice.answered_by, 0) + 1
        per_kind[kind or "none"] = KindFigures(rows=len(choices), quality=q / len(choices))
    n = len(outcomes.rows)
    return RoutedFigures(
        quality=quality / n,
        cost=cost / n,
        calls_per_request=calls / n,
        answered_by={t: answered.get(t, 0) / n for t in outcomes.tiers},
        by_kind=per_kind,
    )


def report(
    outcomes: str,
    train: OutcomeSet,
    test: OutcomeSet,
    classifier: KindClassifier,
    signal: str,
    objective: Objective,
    grid: Sequence[float],
    min_rows: int = MIN_KIND_ROWS,
) -> tuple[dict[str, KindLadder], KindCalibrationReport]:
    """The ladders chosen on ``train`` and the report of their figures on ``test`` (of the
    ``outcomes`` file). A kind with fewer than ``min_rows`` train rows gets no ladder of its
    own: its rows climb the ladder of the route without kinds, chosen with them."""
    predicted = classifier.cross_fitted(train.rows)
    counts = {kind: predicted.count(kind) for kind in set(predicted)}
    few = sorted(k for k, n in counts.items() if n < min_rows and k != NO_KIND)
    train_kinds = [NO_KIND if kind in few else kind for kind in predicted]
    ladders = choose_kind_ladders(train, train_kinds, signal, objective, grid)
    test_kinds = classifier.predict([row.prompt for row in test.rows])
    true = [row.labels.kind or NO_KIND for row in test.rows]
    top = test.tiers[-1]
    routed_test = routed(test, test_kinds, signal, ladders)
    train_right = [
        p == (r.labels.kind or NO_KIND) for p, r in zip(predicted, train.rows, strict=True)
    ]
    result = KindCalibrationReport(
        outcomes=outcomes,
        signal=signal,
        objective=objective.describe(),
        calibrated_on=train.models(),
        ladders={kind or "none": ladder.describe() for kind, ladder in ladders.items()},
        kinds_without_a_ladder=KindsWithoutALadder(
            min_rows=min_rows, kinds={kind: counts[kind] for kind in few}
        ),
        kind_classifier=KindClassifierFigures(
            train_out_of_fold_accuracy=float(np.mean(train_right)),
            test_accuracy=float(np.mean([p == t for p, t in zip(test_kinds, true, strict=True)])),
            min_probability=classifier.min_probability,
            prompt_view=PromptViewFigures.of_view(classifier.view),
        ),
        train=routed(train, train_kinds, signal, ladders),
        test=KindTest(
            routed_by_kind=RoutedAgainstTop(
                **dict(routed_test),
                cost_vs_top_only=routed_test.cost / test.cost(top),
                quality_vs_top_only=routed_test.quality - test.quality(top),
            ),
            baselines=baselines(test),
        ),
    )
    return ladders, result


def kind_routes(
    policy: Policy,
    route: str,
    ladders: dict[str, KindLadder],
    kinds_file: Path,
    min_probability: float,
) -> Policy:
    """``policy`` serving ``ladders``: a route ``<route>-<kind>`` per kind (before ``route``,
    on its task classes, its steps' validators kept), ``route`` itself climbing the ladder of
    requests without a kind (its start router dropped: the ladder was chosen without it), and
    ``question_kinds`` naming the classifier's file (beside the policy version)."""
    prefix = f"{route}-"
    # A policy calibrated by kind before: its kind routes of this route are replaced.
    routes = [r for r in policy.routes if not (r.name.startswith(prefix) and r.kinds)]
    base = route_named(policy, route)
    names = [r.name for r in routes]
    added = []
    for kind, ladder in sorted(ladders.items()):
        steps = _steps(base, ladder)
        if kind == NO_KIND:
            base = base.model_copy(update={"ladder": steps, "start_router": None})
            continue
        name = f"{prefix}{kind}"
        if name in names:
            raise ConfigError(
                f"the policy already has a route {name!r} (without kinds)",
                hint="rename that route, or calibrate another --route",
            )
        added.append(
            RouteSpec(
                name=name,
                tasks=list(base.tasks),
                kinds=[kind],
                ladder=steps,
                on_exhausted="accept_last",
            )
        )
    at = names.index(route)
    kinds = QuestionKindsSpec.model_validate(
        {"file": kinds_file.name, "tasks": list(base.tasks), "min_probability": min_probability},
        context={"base_dir": kinds_file.parent},
    )
    return policy.model_copy(
        update={"routes": [*routes[:at], *added, base, *routes[at + 1 :]], "question_kinds": kinds}
    )


def _steps(base: RouteSpec, ladder: KindLadder) -> list[LadderStepSpec]:
    known = {step.tier: step for step in base.ladder if step.tier}
    fallback = next(step for step in base.ladder if step.tier)
    steps = []
    for index, tier in enumerate(ladder.tiers):
        step = known.get(tier) or LadderStepSpec(tier=tier, validators=list(fallback.validators))
        gated = index < len(ladder.thresholds) and ladder.thresholds[index] > 0
        threshold = round(float(ladder.thresholds[index]), 4) if gated else None
        steps.append(step.model_copy(update={"min_confidence": threshold}))
    return steps
