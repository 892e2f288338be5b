"""Field gates by kind of value, chosen to hold on schema families calibration never saw.

A route's field gates (``field_gates`` on every generating step: one threshold per kind of value,
see :mod:`tierserve.signals.value_kinds`) are chosen on labelled extraction outcomes grouped by
schema family (invoices, contacts, shipments, ...), and judged the way a new schema meets them:

* **leave one family out**: for each family, gates chosen on the other families are scored on
  it; these left-out figures are the headline, beside the in-sample ones;
* **the worst family decides**: a setting is judged by its worst family, not by the average, so a
  gate that holds on the families it was chosen on but one is not taken for one that holds.

Among the settings whose worst family flags at most ``max_flagged`` of its answers, the one with
the lowest worst-family silent-wrong share is chosen (then the most answers right, then the least
cost). The search is coordinate descent over the kinds (each kind's threshold in turn, the others
held), from no gates, twice round: the kinds are few and their effects nearly separate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from tierserve.evaluate.field_figures import FieldFigures, KindGateChoice
from tierserve.evaluate.fields import FieldCase, figures
from tierserve.policy.ladder import Ladder
from tierserve.policy.spec import LadderStepSpec
from tierserve.signals.value_kinds import VALUE_KINDS, ValueKind

__all__ = [
    "KIND_GRID",
    "FamilyFold",
    "choose_kind_gates",
    "gated_by_kind",
    "leave_one_family_out",
    "with_kind_gates",
]

KIND_GRID = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
"""Thresholds tried per kind of value (0: no gate on that kind)."""
ROUNDS = 2

KindGates = dict[ValueKind, float]


def gated_by_kind(gates: Mapping[ValueKind, float]) -> Callable[[LadderStepSpec], LadderStepSpec]:
    """The change that gates a generating step by kind of value (``gates``; 0: none), in place
    of its per-name field and review thresholds (learned on the families they saw)."""
    kept = {kind: float(value) for kind, value in gates.items() if value > 0}

    def gated(step: LadderStepSpec) -> LadderStepSpec:
        return step.model_copy(
            update={
                "field_gates": kept,
                "min_field_confidence": None,
                "gated_fields": [],
                "review_field_confidence": {},
            }
        )

    return gated


def with_kind_gates(ladder: Ladder, gates: Mapping[ValueKind, float]) -> Ladder:
    """``ladder`` with every generating step :func:`gated_by_kind`."""
    gated = gated_by_kind(gates)
    steps = tuple(gated(s) if s.action == "generate" else s for s in ladder.steps)
    return replace(ladder, steps=steps)


def _by_family(cases: Sequence[FieldCase]) -> dict[str, list[FieldCase]]:
    families: dict[str, list[FieldCase]] = {}
    for case in cases:
        families.setdefault(case.family, []).append(case)
    return families


@dataclass(frozen=True, slots=True)
class _Judged:
    gates: KindGates
    worst_silent: float
    worst_flagged: float
    right: float
    cost: float


def _judge(
    ladder: Ladder, families: Mapping[str, Sequence[FieldCase]], gates: KindGates
) -> _Judged:
    gated = with_kind_gates(ladder, gates)
    each = [figures(gated, cases) for cases in families.values()]
    every = [case for cases in families.values() for case in cases]
    overall = figures(gated, every)
    return _Judged(
        dict(gates),
        max(f.silent_wrong for f in each),
        max(f.flagged for f in each),
        overall.all_fields_right,
        overall.cost_per_case,
    )


def _key(judged: _Judged, max_flagged: float) -> tuple[float, ...]:
    over = max(0.0, judged.worst_flagged - max_flagged)
    return (over, judged.worst_silent, -judged.right, judged.cost)


def choose_kind_gates(
    ladder: Ladder,
    cases: Sequence[FieldCase],
    *,
    max_flagged: float,
    kinds: Sequence[ValueKind] = VALUE_KINDS,
    grid: Sequence[float] = KIND_GRID,
) -> KindGateChoice:
    """Gates for ``ladder`` chosen on ``cases`` by their worst family (see the module's doc);
    with the worst-family figures they reach."""
    families = _by_family(cases)
    best = _judge(ladder, families, dict.fromkeys(kinds, 0.0))
    for _ in range(ROUNDS):
        for kind in kinds:
            for value in grid:
                tried = _judge(ladder, families, {**best.gates, kind: value})
                if _key(tried, max_flagged) < _key(best, max_flagged):
                    best = tried
    return KindGateChoice(
        gates={k: v for k, v in best.gates.items() if v > 0},
        worst_family_silent_wrong=best.worst_silent,
        worst_family_flagged=best.worst_flagged,
        all_fields_right=best.right,
        cost_per_case=best.cost,
    )


@dataclass(frozen=True, slots=True)
class FamilyFold:
    family: str
    gates: dict[ValueKind, float]
    """Chosen without this family."""
    in_sample: FieldFigures
    """The gates on the families they were chosen on."""
    left_out: FieldFigures
    """The gates on this family, which they never saw."""


def leave_one_family_out(
    ladder: Ladder, cases: Sequence[FieldCase], *, max_flagged: float
) -> list[FamilyFold]:
    """For each family: gates chosen on the others, scored there and on it."""
    folds = []
    families = _by_family(cases)
    for family, held in families.items():
        rest = [case for other, group in families.items() if other != family for case in group]
        chosen = choose_kind_gates(ladder, rest, max_flagged=max_flagged)
        gated = with_kind_gates(ladder, chosen.gates)
        folds.append(FamilyFold(family, chosen.gates, figures(gated, rest), figures(gated, held)))
    return folds
