"""Calibrating a confidence signal per tier, choosing cascade thresholds for an objective, and
writing the result as a new version of a policy file.

Calibration maps a tier's raw signal (e.g. ``conf_q10``) to P(answer acceptable), fitted on the
train split: isotonic regression (monotone, no shape assumed) or Platt scaling (a logistic
curve). Thresholds are chosen on the train split by replaying the cascade over a grid of the
signal's observed values, and reported on the test split; because both calibrations are
monotone, a raw threshold is also "accept when P(acceptable) >= p" for the p reported.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tierserve.errors import ConfigError
from tierserve.evaluate.figures import Reliability, ThresholdChoice
from tierserve.evaluate.outcomes import OutcomeSet, acceptable
from tierserve.evaluate.sweep import cascade_point, run_cascade
from tierserve.policy.spec import LadderStepSpec, Policy
from tierserve.policy.start_router import StartRouterSpec
from tierserve.policy.versions import route_named, with_route, with_steps

__all__ = [
    "Objective",
    "TierCalibration",
    "calibrate",
    "choose_thresholds",
    "choose_with_router",
    "reliability",
    "retuned",
    "score_cascade",
    "signal_grid",
]

Method = Literal["isotonic", "platt"]


@dataclass(frozen=True)
class TierCalibration:
    tier: str
    signal: str
    method: Method
    model: Any

    def probability(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=float)
        if self.method == "isotonic":
            return np.asarray(self.model.predict(x))
        return np.asarray(self.model.predict_proba(x.reshape(-1, 1))[:, 1])


def _signal(outcomes: OutcomeSet, tier: str, signal: str) -> tuple[np.ndarray, np.ndarray]:
    values = [row.outcomes[tier].signals.get(signal) for row in outcomes.rows]
    if any(v is None for v in values):
        raise ConfigError(
            f"tier {tier!r} lacks signal {signal!r} on some rows",
            hint="collect with a stack that reports step signals, or pick another signal",
        )
    quality = np.array([acceptable(row.outcomes[tier].quality) for row in outcomes.rows], dtype=int)
    return np.asarray(values, dtype=float), quality


def calibrate(train: OutcomeSet, signal: str, method: Method) -> dict[str, TierCalibration]:
    """One calibration per tier but the last (the last tier's answer is always accepted)."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    fitted = {}
    for tier in train.tiers[:-1]:
        values, right = _signal(train, tier, signal)
        model: Any
        if method == "isotonic":
            model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            model.fit(values, right)
        else:
            if right.min() == right.max():
                raise ConfigError(f"tier {tier!r}: every train answer has the same label")
            model = LogisticRegression().fit(values.reshape(-1, 1), right)
        fitted[tier] = TierCalibration(tier, signal, method, model)
    return fitted


def reliability(test: OutcomeSet, calibration: TierCalibration, bins: int = 10) -> Reliability:
    """Brier score and expected calibration error of ``calibration`` on ``test``."""
    values, right = _signal(test, calibration.tier, calibration.signal)
    predicted = calibration.probability(values)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(predicted, edges[1:-1]), 0, bins - 1)
    ece = sum(
        abs(predicted[which == b].mean() - right[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )
    return Reliability(brier=float(np.mean((predicted - right) ** 2)), ece=float(ece))


def signal_grid(outcomes: OutcomeSet, signal: str, steps: int = 21) -> list[float]:
    """Thresholds at the quantiles of the signal's observed values (any scale), plus 'never'."""
    values = [
        row.outcomes[tier].signals[signal]
        for row in outcomes.rows
        for tier in outcomes.tiers[:-1]
        if signal in row.outcomes[tier].signals
    ]
    if not values:
        raise ConfigError(f"no tier reports signal {signal!r}")
    grid = sorted({float(v) for v in np.quantile(values, np.linspace(0.0, 1.0, steps))})
    return [*grid, float("inf")]


@dataclass(frozen=True)
class Objective:
    """``quality_share``: at least that share of top-tier-only quality, at minimum cost.
    ``max_cost``: at most that mean cost per request, at maximum quality."""

    quality_share: float | None = None
    max_cost: float | None = None

    def __post_init__(self) -> None:
        if (self.quality_share is None) == (self.max_cost is None):
            raise ConfigError("give exactly one of quality_share and max_cost")

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``quality_share=0.95`` or ``max_cost=0.0001``, as the command line writes it."""
        kind, _, value = text.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if kind not in ("quality_share", "max_cost") or number is None:
            raise ConfigError(
                f"cannot read objective {text!r}", hint="use quality_share=0.95 or max_cost=0.0001"
            )
        return cls(**{kind: number})

    def describe(self) -> str:
        if self.quality_share is not None:
            return f">= {self.quality_share:.0%} of top-tier-only quality at minimum cost"
        return f"mean cost <= {self.max_cost} at maximum quality"


def score_cascade(
    outcomes: OutcomeSet,
    signal: str,
    thresholds: Sequence[float],
    starts: Sequence[int] | None = None,
) -> tuple[float, float]:
    """Mean quality and mean cost per request of the cascade with ``thresholds`` on
    ``outcomes``, walked through the serving kernel."""
    choices = run_cascade(outcomes, signal, thresholds, starts)
    point = cascade_point(outcomes, thresholds, choices)
    return point.quality, point.cost


def choose_thresholds(
    train: OutcomeSet,
    signal: str,
    objective: Objective,
    grid: Sequence[float],
    starts: Sequence[int] | None = None,
) -> ThresholdChoice:
    """The thresholds (one per tier but the last) that best meet ``objective`` on ``train``;
    ``starts``: per row, the tier index a start router begins at."""
    top_quality = train.quality(train.tiers[-1])
    best: tuple[float, float, tuple[float, ...]] | None = None
    for combo in itertools.product(grid, repeat=len(train.tiers) - 1):
        quality, cost = score_cascade(train, signal, combo, starts)
        if objective.quality_share is not None:
            if quality < objective.quality_share * top_quality:
                continue
            key = (cost, -quality)
        else:
            assert objective.max_cost is not None
            if cost > objective.max_cost:
                continue
            key = (-quality, cost)
        if best is None or key < best[:2]:
            best = (*key, combo)
    if best is None:
        raise ConfigError(f"no thresholds meet the objective ({objective.describe()}) on train")
    thresholds = dict(zip(train.tiers[:-1], best[2], strict=True))
    quality, cost = score_cascade(train, signal, best[2], starts)
    return ThresholdChoice(thresholds=thresholds, train_quality=quality, train_cost=cost)


MIN_PROBABILITIES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def choose_with_router(
    train: OutcomeSet,
    signal: str,
    objective: Objective,
    grid: Sequence[float],
    suffices: dict[str, list[float]],
) -> ThresholdChoice:
    """The start router's ``min_probability`` and the cascade thresholds behind it that best
    meet ``objective`` on ``train``, from the router's out-of-fold ``suffices`` there."""
    from tierserve.evaluate.routers import start_indexes

    best: tuple[tuple[float, float], float, ThresholdChoice] | None = None
    for level in MIN_PROBABILITIES:
        starts = start_indexes(train.tiers, suffices, level)
        try:
            chosen = choose_thresholds(train, signal, objective, grid, starts)
        except ConfigError:
            continue
        quality, cost = chosen.train_quality, chosen.train_cost
        key = (cost, -quality) if objective.quality_share is not None else (-quality, cost)
        if best is None or key < best[0]:
            best = (key, level, chosen)
    if best is None:
        raise ConfigError(f"no router level meets the objective ({objective.describe()}) on train")
    return best[2].model_copy(update={"min_probability": best[1]})


def retuned(
    policy: Policy,
    route: str,
    thresholds: Mapping[str, float],
    *,
    key: Literal["min_confidence", "min_field_confidence"] = "min_confidence",
    start_router: StartRouterSpec | None = None,
) -> Policy:
    """``policy`` with ``route``'s steps' ``key`` thresholds set per tier (0: no such gate; an
    infinite threshold drops the step, which could only cost there), and its start router set
    when one is given."""

    def step_retuned(step: LadderStepSpec) -> LadderStepSpec | None:
        threshold = thresholds.get(str(step.tier))
        if threshold is None:
            return step
        if not np.isfinite(threshold):
            return None
        return step.model_copy(update={key: round(float(threshold), 4) if threshold > 0 else None})

    changed = with_steps(policy, route, step_retuned)
    if start_router is None:
        return changed
    routed = route_named(changed, route).model_copy(update={"start_router": start_router})
    return with_route(changed, routed)
