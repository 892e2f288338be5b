"""Operating points of a router over an outcome set, and the report of its metrics.

Two families:

* a **pre-generation router** scores each request before any tier runs (RouteLLM's "strong win
  rate"); thresholds at the deciles of its scores send the high scorers to the top tier, the
  rest to the cheapest, exactly as RouteLLM's evaluator does;
* a **cascade** runs tiers cheapest first and accepts the first answer whose confidence signal
  clears that tier's threshold; it pays for every tier it tried, and counts as a top-tier call
  when the top tier answered. Thresholds are swept over a grid, one per tier but the last.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tierserve.evaluate.figures import (
    CascadeFigures,
    DecisionMetrics,
    FrontierPoint,
    Percentiles,
    QualityCost,
    RouterReport,
    SweepPoint,
    TierFigures,
)
from tierserve.evaluate.metrics import (
    OperatingPoint,
    aiq,
    apgr,
    cost_to_parity,
    cpt,
    upper_hull,
)
from tierserve.evaluate.outcomes import OutcomeSet, acceptable
from tierserve.policy.ladder import Answer, Finish, Ladder, LadderWalk
from tierserve.policy.spec import LadderStepSpec

__all__ = [
    "CascadeChoice",
    "baselines",
    "best_per_call_share",
    "cascade_figures",
    "cascade_ladder",
    "cascade_point",
    "cascade_sweep",
    "decision_report",
    "not_applicable",
    "oracle",
    "report",
    "run_cascade",
    "score_points",
]


ROUTER_STEPS = 10
"""Thresholds of a pre-generation router: its scores' deciles, as RouteLLM's evaluator."""


def score_points(
    outcomes: OutcomeSet, scores: Sequence[float], bins: int = ROUTER_STEPS
) -> list[OperatingPoint]:
    weak, strong = outcomes.tiers[0], outcomes.tiers[-1]
    values = np.asarray(scores, dtype=float)
    if len(values) != len(outcomes.rows):
        raise ValueError(f"{len(values)} scores for {len(outcomes.rows)} rows")
    weak_q = np.array([r.outcomes[weak].quality for r in outcomes.rows])
    strong_q = np.array([r.outcomes[strong].quality for r in outcomes.rows])
    weak_c = np.array([r.outcomes[weak].cost for r in outcomes.rows])
    strong_c = np.array([r.outcomes[strong].cost for r in outcomes.rows])
    edges = np.quantile(values, np.linspace(0.0, 1.0, bins + 1))
    points = []
    for index, edge in enumerate(edges):
        # The last edge is the maximum: '>' sends nobody to the strong model (RouteLLM).
        to_strong = values >= edge if index < len(edges) - 1 else values > edge
        points.append(
            OperatingPoint(
                threshold=float(edge),
                strong_fraction=float(to_strong.mean()),
                quality=float(np.where(to_strong, strong_q, weak_q).mean()),
                cost=float(np.where(to_strong, strong_c, weak_c).mean()),
            )
        )
    return points


@dataclass(frozen=True, slots=True)
class CascadeChoice:
    """What a cascade did with one request."""

    answered_by: str
    tried: tuple[str, ...]
    quality: float
    cost: float
    latency_s: float = 0.0
    """Latency of every tier tried, one after the other."""
    valid_schema: bool | None = None
    """Whether the accepted answer passed its schema check (structured rows only)."""
    reasons: tuple[str, ...] = ()
    """The kernel's reason code at each step."""


def cascade_ladder(tiers: Sequence[str], thresholds: Sequence[float]) -> Ladder:
    """The serving ladder of a cascade: tier i accepts at ``thresholds[i]``, the last tier's
    answer is accepted as it is."""
    if len(thresholds) != len(tiers) - 1:
        raise ValueError(f"{len(tiers) - 1} thresholds needed, got {len(thresholds)}")
    # model_construct: a sweep's thresholds are on the signal's own scale (log-probabilities
    # are negative, 'never' is +inf), outside the [0, 1] a served policy's confidence takes.
    steps = [
        LadderStepSpec.model_construct(tier=tier, min_confidence=float(threshold))
        for tier, threshold in zip(tiers, thresholds, strict=False)
    ]
    return Ladder(steps=(*steps, LadderStepSpec(tier=tiers[-1])))


def run_cascade(
    outcomes: OutcomeSet,
    signal: str,
    thresholds: Sequence[float],
    starts: Sequence[int] | None = None,
) -> list[CascadeChoice]:
    """Walks each row through the ladder kernel: tier i's answer is accepted when its
    ``signal`` >= thresholds[i] (a row without the signal never clears a threshold).
    ``starts``: per row, the index of the tier its ladder starts at (a start router's)."""
    ladders: dict[int, Ladder] = {}
    choices = []
    for number, row in enumerate(outcomes.rows):
        first = starts[number] if starts is not None else 0
        if first not in ladders:
            ladders[first] = cascade_ladder(outcomes.tiers[first:], thresholds[first:])
        ladder = ladders[first]
        tried: list[str] = []
        cost = latency = 0.0
        walk = LadderWalk(ladder)
        while (move := walk.next_step) is not None:
            tier = outcomes.tiers[first + move.index]
            outcome = row.outcomes[tier]
            tried.append(tier)
            cost += outcome.cost
            latency += outcome.latency_s or 0.0
            walk.observe(Answer(outcome.signals.get(signal, float("-inf"))))
        end = walk.end
        assert isinstance(end, Finish) and end.answer is not None
        answer = row.outcomes[outcomes.tiers[first + end.answer]]
        choices.append(
            CascadeChoice(
                outcomes.tiers[first + end.answer],
                tuple(tried),
                answer.quality,
                cost,
                latency,
                answer.valid_schema,
                tuple(verdict.reason for verdict in walk.verdicts),
            )
        )
    return choices


def oracle(outcomes: OutcomeSet) -> QualityCost:
    """Each request answered by the cheapest tier with the best answer, paying for it alone:
    the quality no router can beat, at the least cost it could be had for."""
    quality = cost = 0.0
    for row in outcomes.rows:
        best = max(row.outcomes[t].quality for t in outcomes.tiers)
        tier = next(t for t in outcomes.tiers if row.outcomes[t].quality == best)
        quality, cost = quality + best, cost + row.outcomes[tier].cost
    return QualityCost(quality=quality / len(outcomes.rows), cost=cost / len(outcomes.rows))


def baselines(outcomes: OutcomeSet) -> dict[str, QualityCost]:
    """What a router is compared with: each tier alone (``small_only``...) and the oracle."""
    alone = {
        f"{tier}_only": QualityCost(quality=outcomes.quality(tier), cost=outcomes.cost(tier))
        for tier in outcomes.tiers
    }
    return {**alone, "oracle": oracle(outcomes)}


def cascade_point(
    outcomes: OutcomeSet, thresholds: Sequence[float], choices: Sequence[CascadeChoice]
) -> OperatingPoint:
    """The operating point of one cascade run (``choices``, from :func:`run_cascade`)."""
    top = outcomes.tiers[-1]
    return OperatingPoint(
        threshold=float(thresholds[0]) if len(thresholds) == 1 else float(np.mean(thresholds)),
        strong_fraction=sum(c.answered_by == top for c in choices) / len(choices),
        quality=sum(c.quality for c in choices) / len(choices),
        cost=sum(c.cost for c in choices) / len(choices),
    )


def cascade_figures(
    outcomes: OutcomeSet, thresholds: Sequence[float], choices: Sequence[CascadeChoice]
) -> CascadeFigures:
    """A cascade run's quality, cost, answering tiers and routing decisions on ``outcomes``."""
    point = cascade_point(outcomes, thresholds, choices)
    return CascadeFigures(
        quality=point.quality,
        cost=point.cost,
        answered_by={
            t: sum(c.answered_by == t for c in choices) / len(choices) for t in outcomes.tiers
        },
        **dict(decision_report(outcomes, choices)),
    )


def _cascade_runs(
    outcomes: OutcomeSet, signal: str, grid: Sequence[float]
) -> list[tuple[tuple[float, ...], list[CascadeChoice]]]:
    """A cascade run per threshold combination: one grid value per tier but the last."""
    return [
        (combo, run_cascade(outcomes, signal, combo))
        for combo in itertools.product(grid, repeat=len(outcomes.tiers) - 1)
    ]


def cascade_sweep(
    outcomes: OutcomeSet, signal: str, grid: Sequence[float]
) -> tuple[list[OperatingPoint], list[FrontierPoint], list[SweepPoint]]:
    """Every threshold combination's operating point; the frontier (the combinations on the
    upper cost-quality hull, each with its thresholds and routing-decision metrics); and the
    threshold sweep, where every tier gets the same grid position (the grid is the signal's
    quantiles, so positions compare across signals of any scale)."""
    runs = _cascade_runs(outcomes, signal, grid)
    points = [cascade_point(outcomes, combo, choices) for combo, choices in runs]
    on_hull = set(upper_hull([(p.cost, p.quality) for p in points]))
    frontier: dict[tuple[float, float], FrontierPoint] = {}
    for (combo, choices), point in zip(runs, points, strict=True):
        key = (point.cost, point.quality)
        if key in on_hull and key not in frontier:
            frontier[key] = FrontierPoint(
                thresholds=dict(zip(outcomes.tiers[:-1], map(float, combo), strict=True)),
                quality=point.quality,
                cost=point.cost,
                strong_fraction=point.strong_fraction,
                **dict(decision_report(outcomes, choices)),
            )
    finite = [t for t in grid if np.isfinite(t)]
    sweep = [
        SweepPoint(
            grid_position=finite.index(combo[0]) / max(len(finite) - 1, 1),
            threshold=combo[0],
            strong_fraction=point.strong_fraction,
            quality=point.quality,
            cost=point.cost,
        )
        for (combo, _), point in zip(runs, points, strict=True)
        if len(set(combo)) == 1 and np.isfinite(combo[0])
    ]
    return points, [frontier[key] for key in sorted(frontier)], sweep


def best_per_call_share(points: Sequence[OperatingPoint]) -> list[OperatingPoint]:
    """At each strong-call fraction, the point of best quality (then least cost).

    A cascade has a threshold per tier, so many points share a call fraction; the operator
    picks the best of them, and the quality-against-calls curve is that envelope."""
    best: dict[float, OperatingPoint] = {}
    for point in points:
        kept = best.get(point.strong_fraction)
        if kept is None or (point.quality, -point.cost) > (kept.quality, -kept.cost):
            best[point.strong_fraction] = point
    return [best[share] for share in sorted(best)]


def not_applicable(
    outcomes: OutcomeSet, scores: Sequence[float] | None = None, steps: int = ROUTER_STEPS
) -> list[str]:
    """Why APGR and CPT would not mean what they say on ``outcomes`` (empty when they do):
    both measure the share of a positive quality gap a router recovers, read off a curve
    with ``steps`` thresholds over the router's ``scores``."""
    weak, strong = outcomes.tiers[0], outcomes.tiers[-1]
    q_weak, q_strong = outcomes.quality(weak), outcomes.quality(strong)
    reasons = []
    if q_strong - q_weak <= 1e-12:
        reasons.append(
            f"no quality gap to recover: the top tier {strong} ({q_strong:.3f}) is not better "
            f"than the cheapest {weak} ({q_weak:.3f})"
        )
    if scores is not None and len(outcomes.rows) < steps:
        reasons.append(
            f"{len(outcomes.rows)} rows are fewer than the {steps} threshold steps: each step "
            "must move at least one request"
        )
    if scores is not None and len(set(scores)) <= 1:
        reasons.append(
            "the router gave every request the same score: a degenerate router (its curve is "
            "the straight line of random routing by construction)"
        )
    return reasons


def report(
    outcomes: OutcomeSet,
    points: Sequence[OperatingPoint],
    calls_curve: Sequence[OperatingPoint] | None = None,
    *,
    scores: Sequence[float] | None = None,
) -> RouterReport:
    """Every metric of docs/metrics.md that the operating points determine.

    APGR and CPT read quality against strong calls from ``calls_curve`` (default: the points
    themselves, as for a one-threshold router); AIQ and cost to parity use every point. Where
    they do not apply (:func:`not_applicable`; ``scores``: a router's, to check it too) they
    are None and ``not_applicable`` says why."""
    curve = points if calls_curve is None else calls_curve
    weak, strong = outcomes.tiers[0], outcomes.tiers[-1]
    q_weak, q_strong = outcomes.quality(weak), outcomes.quality(strong)
    reasons = not_applicable(outcomes, scores)
    applies = not reasons
    parity = cost_to_parity(points, q_strong)
    return RouterReport(
        rows=len(outcomes.rows),
        weak=TierFigures(tier=weak, quality=q_weak, cost=outcomes.cost(weak)),
        strong=TierFigures(tier=strong, quality=q_strong, cost=outcomes.cost(strong)),
        apgr=apgr(curve, q_weak, q_strong) if applies else None,
        cpt={
            f"{int(x * 100)}%": cpt(curve, q_weak, q_strong, x) if applies else None
            for x in (0.5, 0.8, 0.95)
        },
        not_applicable=reasons,
        aiq=aiq(points, (outcomes.cost(weak), outcomes.cost(strong))),
        cost_to_parity=parity,
        cost_to_parity_vs_strong=None if parity is None else parity / outcomes.cost(strong),
        points=list(points),
        calls_curve=list(curve),
    )


def decision_report(outcomes: OutcomeSet, choices: Sequence[CascadeChoice]) -> DecisionMetrics:
    """The routing-decision metrics of docs/metrics.md for one cascade over ``outcomes``.

    An answer is acceptable as :func:`~tierserve.evaluate.outcomes.acceptable` says.
    Escalation precision: of the requests escalated past the first tier, the share whose first
    answer was unacceptable; recall: of the requests whose first answer was unacceptable, the
    share escalated.
    False-cheap: answered below the top tier with an unacceptable answer. Premium overuse:
    answered by the top tier although a cheaper tier's answer was acceptable. Containment:
    answered by the first tier. Valid-schema rate, per route (outcome rows name it by their
    task class, which picks the route): the share of accepted answers that passed their
    schema check, over the rows that required structured output.
    """
    first, top = outcomes.tiers[0], outcomes.tiers[-1]
    rows = outcomes.rows
    bad_first = [not acceptable(row.outcomes[first].quality) for row in rows]
    escalated = [len(choice.tried) > 1 for choice in choices]
    both = sum(e and b for e, b in zip(escalated, bad_first, strict=True))
    by_task: dict[str, list[float]] = {}
    schema_by_task: dict[str, list[bool]] = {}
    for row, choice in zip(rows, choices, strict=True):
        task = row.labels.task or "unlabelled"
        by_task.setdefault(task, []).append(choice.latency_s)
        if row.labels.structured:
            schema_by_task.setdefault(task, []).append(choice.valid_schema is True)
    n = len(rows)
    return DecisionMetrics(
        escalation_precision=both / sum(escalated) if any(escalated) else None,
        escalation_recall=both / sum(bad_first) if any(bad_first) else None,
        false_cheap_rate=sum(c.answered_by != top and not acceptable(c.quality) for c in choices)
        / n,
        premium_overuse_rate=sum(
            c.answered_by == top
            and any(acceptable(row.outcomes[t].quality) for t in outcomes.tiers[:-1])
            for row, c in zip(rows, choices, strict=True)
        )
        / n,
        containment=sum(c.answered_by == first for c in choices) / n,
        latency_s_by_task={
            task: Percentiles(
                p50=float(np.percentile(values, 50)), p95=float(np.percentile(values, 95))
            )
            for task, values in sorted(by_task.items())
        },
        valid_schema_rate_by_route={
            task: sum(valid) / len(valid) for task, valid in sorted(schema_by_task.items())
        },
    )
