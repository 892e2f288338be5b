"""Calibrating a confidence signal per tier, choosing cascade thresholds for an objective, and
writing the result as a new version of a policy file.

Calibration maps a tier's raw signal (e.g. ``conf_q10``) to P(answer acceptable), fitted on the
train split: isotonic regression (monotone, no shape assumed) or Platt scaling (a logistic
curve). Thresholds are chosen on the train split by replaying the cascade over a grid of the
signal's observed values, and reported on the test split; because both calibrations are
monotone, a raw threshold is also "accept when P(acceptable) >= p" for the p reported.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from tierserve.errors import ConfigError
from tierserve.evaluate.outcomes import OutcomeSet, acceptable
from tierserve.evaluate.sweep import cascade_point, run_cascade

__all__ = [
    "Objective",
    "TierCalibration",
    "calibrate",
    "choose_thresholds",
    "choose_with_router",
    "reliability",
    "score_cascade",
    "signal_grid",
    "write_policy",
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


def reliability(test: OutcomeSet, calibration: TierCalibration, bins: int = 10) -> dict[str, float]:
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
    return {"brier": float(np.mean((predicted - right) ** 2)), "ece": float(ece)}


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
) -> dict[str, Any]:
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
    return {"thresholds": thresholds, "train_quality": quality, "train_cost": cost}


MIN_PROBABILITIES = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def choose_with_router(
    train: OutcomeSet,
    signal: str,
    objective: Objective,
    grid: Sequence[float],
    suffices: dict[str, list[float]],
) -> dict[str, Any]:
    """The start router's ``min_probability`` and the cascade thresholds behind it that best
    meet ``objective`` on ``train``, from the router's out-of-fold ``suffices`` there."""
    from tierserve.evaluate.routers import start_indexes

    best: tuple[tuple[float, float], float, dict[str, Any]] | None = None
    for level in MIN_PROBABILITIES:
        starts = start_indexes(train.tiers, suffices, level)
        try:
            chosen = choose_thresholds(train, signal, objective, grid, starts)
        except ConfigError:
            continue
        quality, cost = chosen["train_quality"], chosen["train_cost"]
        key = (cost, -quality) if objective.quality_share is not None else (-quality, cost)
        if best is None or key < best[0]:
            best = (key, level, chosen)
    if best is None:
        raise ConfigError(f"no router level meets the objective ({objective.describe()}) on train")
    return {**best[2], "min_probability": best[1]}


def write_policy(
    policy_path: Path,
    out: Path,
    *,
    provenance: str,
    route: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    signal: str | None = None,
    key: str = "min_confidence",
    start_router: Mapping[str, Any] | None = None,
    suffix: str = "calibrated",
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> str:
    """A copy of the policy with ``route``'s step thresholds (``key``) replaced, on ``signal``
    (which the new version names, so a stack measuring another signal refuses it; None: field
    thresholds, which need no signal); ``edit``: any other change to the policy's data;
    returns its version.

    Written beside the original so its relative files (schemas, examples) still resolve; the
    new file is loaded and validated before this returns.
    """
    from tierserve.policy.spec import load_policy

    data = yaml.safe_load(policy_path.read_text())
    if route is not None:
        _retuned(data, policy_path, route, thresholds or {}, key, start_router)
    if edit is not None:
        edit(data)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    data["version"] = f"{data['version']}+{suffix}.{stamp}"
    if signal is not None:
        data["confidence_signal"] = signal
    header = "".join(f"# {line}\n" for line in provenance.splitlines())
    out.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return load_policy(out).version


def _retuned(
    data: dict[str, Any],
    policy_path: Path,
    route: str,
    thresholds: Mapping[str, float],
    key: str,
    start_router: Mapping[str, Any] | None,
) -> None:
    spec = next((r for r in data["routes"] if r["name"] == route), None)
    if spec is None:
        raise ConfigError(f"policy {policy_path} has no route {route!r}")
    steps = spec["ladder"]
    if start_router is not None:
        spec["start_router"] = dict(start_router)
    kept = []
    for step in steps:
        threshold = thresholds.get(step.get("tier"))
        if threshold is not None and not np.isfinite(threshold):
            continue  # never accepted there: the tier only costs, so the ladder skips it
        if threshold is not None and threshold > 0:
            step[key] = round(float(threshold), 4)
        elif threshold is not None:
            step.pop(key, None)  # 0: the step has no such gate
        kept.append(step)
    steps[:] = kept
