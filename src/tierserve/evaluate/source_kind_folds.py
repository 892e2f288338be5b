"""Ladders per question kind, reported on a source of questions their calibration never saw.

For each source left out, the kind classifier and one ladder per kind are fitted on every row of
the other sources (as ``tierserve eval calibrate --by-kind`` fits them on a train split,
:func:`tierserve.evaluate.kinds.report`), and the routed figures are taken on the left-out
source's rows, beside the in-sample ones: what a user whose questions are phrased unlike the
calibration data would get. Sources must label each row's kind (``labels.kind``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from tierserve.evaluate.calibrate import Objective, signal_grid
from tierserve.evaluate.figures import Figures, RoutedAgainstTop, RoutedFigures
from tierserve.evaluate.kinds import MIN_KIND_ROWS, KindClassifier, report
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.source_folds import LeftOut, left_out_in_turn

__all__ = ["KindSourceFold", "KindSourcesReport", "leave_one_source_out_by_kind"]


class KindSourceFold(Figures):
    source: str
    ladders: dict[str, str] = Field(description="Per kind, the ladder chosen without this source.")
    kind_accuracy_left_out: float = Field(
        description="The kind classifier's accuracy on this source's rows."
    )
    in_sample: RoutedFigures = Field(description="On the sources the ladders were chosen on.")
    left_out: RoutedAgainstTop = Field(description="On this source, which they never saw.")


class KindSourcesReport(Figures):
    """``tierserve eval sources --by-kind``."""

    signal: str
    objective: str
    sources: dict[str, int]
    calibrated_on: dict[str, str]
    leave_one_source_out: list[KindSourceFold]
    left_out_summary: dict[str, LeftOut]


def leave_one_source_out_by_kind(
    sources: Mapping[str, OutcomeSet],
    signal: str,
    objective: Objective,
    encoder: Any,
    *,
    grid_steps: int = 21,
    min_rows: int = MIN_KIND_ROWS,
    min_probability: float = 0.5,
) -> list[KindSourceFold]:
    folds = []
    for name, held, rest in left_out_in_turn(sources):
        train = OutcomeSet.of([row for s in rest.values() for row in s.rows], held.tiers)
        classifier = KindClassifier.train(train.rows, encoder, min_probability)
        grid = signal_grid(train, signal, grid_steps)
        _, fitted = report(name, train, held, classifier, signal, objective, grid, min_rows)
        folds.append(
            KindSourceFold(
                source=name,
                ladders=fitted.ladders,
                kind_accuracy_left_out=fitted.kind_classifier.test_accuracy,
                in_sample=fitted.train,
                left_out=fitted.test.routed_by_kind,
            )
        )
    return folds
