"""The typed figures of field-level extraction calibration (``tierserve eval fields``): what a
route's field gates reach over labelled extraction cases, and the reports of both ways of
choosing them (per field name on a train split, per kind of value leaving one family out)."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

from tierserve.evaluate.figures import Figures
from tierserve.policy.versions import WrittenVersion
from tierserve.signals.value_kinds import ValueKind

__all__ = [
    "AgainstTopAlone",
    "AsInPolicy",
    "FamiliesReport",
    "FamilyLeftOut",
    "FieldChoice",
    "FieldFigures",
    "FieldTuning",
    "FieldsReport",
    "KindGateChoice",
    "KindGatesOnAll",
    "LeftOutSummary",
    "Review",
    "StepThreshold",
]

Review = dict[str, dict[str, float]]
"""Per tier, its steps' review_field_confidence."""


def _skip_named(value: float) -> float | str:
    return "skip" if value == math.inf else value


def _skip_read(value: object) -> object:
    return math.inf if value == "skip" else value


StepThreshold = Annotated[
    float, BeforeValidator(_skip_read), PlainSerializer(_skip_named, return_type=float | str)
]
"""A step's threshold; infinite (no answer of the step is trusted, so the ladder skips it) is
written "skip"."""


class FieldFigures(Figures):
    """A ladder over extraction cases, each case's answer judged field by field."""

    cases: int
    all_fields_right: float = Field(description="Share of cases answered with every field right.")
    field_accuracy: float
    silent_wrong: float = Field(
        description="Share of cases answered with a wrong field that no mark flags: the harm."
    )
    flagged: float = Field(description="Share of answers with a field marked for review.")
    escalated: float
    cost_per_case: float
    calls_per_case: float
    answered_by: dict[str, int]


class FieldChoice(Figures):
    thresholds: dict[str, StepThreshold]
    review: Review
    train: FieldFigures
    train_all_fields_right_floor: float = Field(
        description="The strongest tier alone's all-fields-right share on train: the floor."
    )


class FieldTuning(Figures):
    """Thresholds chosen on train and what they reach on test; when nothing meets the
    objective, only a ``note`` saying why."""

    thresholds: dict[str, StepThreshold] | None = None
    review: Review | None = None
    train: FieldFigures | None = None
    train_all_fields_right_floor: float | None = None
    test: FieldFigures | None = None
    note: str | None = None


class AsInPolicy(Figures):
    thresholds: dict[str, float]
    train: FieldFigures
    test: FieldFigures


class FieldsReport(Figures):
    """``tierserve eval fields --by name``."""

    rows: str
    policy: str
    route: str
    cases: dict[str, int]
    objective: str
    field_gates: FieldTuning
    field_gates_with_agreement: FieldTuning = Field(
        description="The same route with a second opinion on each later step, tuned the same way."
    )
    whole_answer_gates: FieldTuning = Field(
        description="Gated on whole-answer confidence instead, tuned the same way."
    )
    as_in_policy: AsInPolicy
    test_untuned: dict[str, FieldFigures]
    policy_written: WrittenVersion | None = None


class KindGateChoice(Figures):
    """Gates per kind of value, chosen by the worst family."""

    gates: dict[ValueKind, float]
    worst_family_silent_wrong: float
    worst_family_flagged: float
    all_fields_right: float
    cost_per_case: float


class AgainstTopAlone(FieldFigures):
    top_alone_all_fields_right: float
    cost_vs_top_alone: float | None


class FamilyLeftOut(Figures):
    gates: dict[ValueKind, float] = Field(description="Chosen without this family.")
    in_sample: FieldFigures = Field(description="On the families they were chosen on.")
    left_out: AgainstTopAlone = Field(description="On this family, which they never saw.")


class LeftOutSummary(Figures):
    worst_silent_wrong: float
    mean_silent_wrong: float
    worst_flagged: float
    all_fields_right_minus_top_alone: dict[str, float]
    worst_cost_vs_top_alone: float


class KindGatesOnAll(KindGateChoice):
    in_sample: AgainstTopAlone


class FamiliesReport(Figures):
    """``tierserve eval fields --by kind``: leave one schema family out."""

    rows: str
    policy: str
    route: str
    families: dict[str, int]
    objective: str
    left_out_summary: LeftOutSummary
    leave_one_family_out: dict[str, FamilyLeftOut]
    chosen_on_all_families: KindGatesOnAll
    top_alone_by_family: dict[str, FieldFigures]
    policy_written: WrittenVersion | None = None
