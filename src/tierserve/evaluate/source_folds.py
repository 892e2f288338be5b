"""Cascade thresholds chosen to hold on a source of questions calibration never saw.

Outcome sets from differently phrased sources (the project's general questions, GSM8K, GPQA,
an app's own traffic) are groups: thresholds are chosen on all but one and reported on the one
left out, beside the in-sample figures, and a setting is judged by its **worst** source — the
objective (a share of the top tier's quality, or a cost cap) must hold on every source it was
chosen on, and among those settings the one whose worst source costs least (relative to that
source's top tier alone) is chosen. Decisions go through the serving kernel
(:func:`~tierserve.evaluate.sweep.run_cascade`), as in ``eval calibrate``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

from pydantic import Field

from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import Objective, score_cascade, signal_grid
from tierserve.evaluate.figures import Figures
from tierserve.evaluate.outcomes import OutcomeSet

__all__ = [
    "LeftOut",
    "SourceFigures",
    "SourceFold",
    "SourcesReport",
    "WorstSourceChoice",
    "choose_by_worst_source",
    "leave_one_source_out",
    "left_out_in_turn",
    "source_figures",
]


class SourceFigures(Figures):
    """A cascade on one source of questions, against that source's top tier alone."""

    rows: int
    quality: float
    cost: float
    top_alone_quality: float
    quality_vs_top_alone: float | None
    cost_vs_top_alone: float | None


class WorstSourceChoice(Figures):
    thresholds: dict[str, float]
    worst_cost_vs_top_alone: float
    worst_quality_vs_top_alone: float
    by_source: dict[str, SourceFigures]


class SourceFold(Figures):
    source: str
    thresholds: dict[str, float] = Field(description="Chosen without this source.")
    in_sample: dict[str, SourceFigures] = Field(
        description="Per source the thresholds were chosen on."
    )
    left_out: SourceFigures = Field(description="On this source, which they never saw.")


class LeftOut(Figures):
    quality_vs_top_alone: float | None
    cost_vs_top_alone: float | None


class SourcesReport(Figures):
    """``tierserve eval sources``: thresholds that must hold on a source they never saw."""

    signal: str
    objective: str
    sources: dict[str, int] = Field(description="Per source, its outcome rows.")
    leave_one_source_out: list[SourceFold]
    left_out_summary: dict[str, LeftOut]
    chosen_on_all_sources: WorstSourceChoice


def source_figures(outcomes: OutcomeSet, signal: str, thresholds: Sequence[float]) -> SourceFigures:
    """The cascade's quality and cost on ``outcomes``, and both against its top tier alone."""
    quality, cost = score_cascade(outcomes, signal, thresholds)
    top = outcomes.tiers[-1]
    top_quality, top_cost = outcomes.quality(top), outcomes.cost(top)
    return SourceFigures(
        rows=len(outcomes.rows),
        quality=quality,
        cost=cost,
        top_alone_quality=top_quality,
        quality_vs_top_alone=quality / top_quality if top_quality else None,
        cost_vs_top_alone=cost / top_cost if top_cost else None,
    )


def _meets(figures: SourceFigures, objective: Objective) -> bool:
    if objective.quality_share is not None:
        return figures.quality >= objective.quality_share * figures.top_alone_quality
    assert objective.max_cost is not None
    return figures.cost <= objective.max_cost


def choose_by_worst_source(
    sources: Mapping[str, OutcomeSet], signal: str, objective: Objective, grid_steps: int = 21
) -> WorstSourceChoice:
    """The thresholds meeting ``objective`` on every source whose worst source is cheapest
    (against its top tier alone), then best (quality against it)."""
    tiers = next(iter(sources.values())).tiers
    every = OutcomeSet.of([row for s in sources.values() for row in s.rows], tiers)
    grid = signal_grid(every, signal, grid_steps)
    best: tuple[tuple[float, float], tuple[float, ...], dict[str, SourceFigures]] | None = None
    for combo in itertools.product(grid, repeat=len(tiers) - 1):
        each = {name: source_figures(s, signal, combo) for name, s in sources.items()}
        if not all(_meets(f, objective) for f in each.values()):
            continue
        worst_cost = max(f.cost_vs_top_alone or 0.0 for f in each.values())
        worst_quality = min(f.quality_vs_top_alone or 0.0 for f in each.values())
        key = (worst_cost, -worst_quality)
        if best is None or key < best[0]:
            best = (key, combo, each)
    if best is None:
        raise ConfigError(
            f"no thresholds meet the objective ({objective.describe()}) on every source of "
            f"{sorted(sources)}",
            hint="loosen the objective, or leave out a source whose top tier fails it",
        )
    return WorstSourceChoice(
        thresholds=dict(zip(tiers[:-1], best[1], strict=True)),
        worst_cost_vs_top_alone=best[0][0],
        worst_quality_vs_top_alone=-best[0][1],
        by_source=best[2],
    )


def left_out_in_turn(
    sources: Mapping[str, OutcomeSet],
) -> Iterator[tuple[str, OutcomeSet, dict[str, OutcomeSet]]]:
    """Each source, its rows, and the other sources: one fold per source."""
    if len(sources) < 2:
        raise ConfigError(
            f"leaving one source out needs two sources or more, got {sorted(sources)}",
            hint="give one outcome file per source",
        )
    for name, held in sources.items():
        yield name, held, {other: s for other, s in sources.items() if other != name}


def leave_one_source_out(
    sources: Mapping[str, OutcomeSet], signal: str, objective: Objective, grid_steps: int = 21
) -> list[SourceFold]:
    folds = []
    for name, held, rest in left_out_in_turn(sources):
        chosen = choose_by_worst_source(rest, signal, objective, grid_steps)
        folds.append(
            SourceFold(
                source=name,
                thresholds=chosen.thresholds,
                in_sample=chosen.by_source,
                left_out=source_figures(held, signal, list(chosen.thresholds.values())),
            )
        )
    return folds
