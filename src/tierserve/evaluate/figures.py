"""The typed figures of the offline reports: what a router or a cascade reaches over outcome
rows, and the reports ``tierserve eval sweep`` and ``eval calibrate`` write.

Every report is a model here (or beside the evaluation it reports), built once and written as
JSON by :func:`~tierserve.evaluate.commands.reports.write_report`; nothing reads a report back
by key. Metric definitions: docs/metrics.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny

from tierserve.evaluate.metrics import OperatingPoint
from tierserve.policy.versions import WrittenVersion
from tierserve.prompt_models.encoder import PromptView

__all__ = [
    "Calibrated",
    "CalibrationReport",
    "CalibrationTest",
    "CascadeFigures",
    "CascadeRouterReport",
    "DecisionMetrics",
    "Figures",
    "FrontierPoint",
    "KindCalibrationReport",
    "KindClassifierFigures",
    "KindFigures",
    "KindTest",
    "KindsWithoutALadder",
    "Percentiles",
    "PromptViewFigures",
    "QualityCost",
    "RandomRouter",
    "Reliability",
    "RoutedAgainstTop",
    "RoutedFigures",
    "RouterChoice",
    "RouterReport",
    "SweepPoint",
    "SweepReport",
    "ThresholdChoice",
    "TierFigures",
    "TrainedRouter",
]


class Figures(BaseModel):
    """A block of a report: immutable, written as JSON as it is (a never-accepted threshold
    as ``Infinity``, as Python's json module writes it)."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class QualityCost(Figures):
    quality: float = Field(description="Mean quality per request.")
    cost: float = Field(description="Mean cost per request.")


class TierFigures(QualityCost):
    tier: str


class Percentiles(Figures):
    p50: float
    p95: float


class DecisionMetrics(Figures):
    """The routing-decision metrics of one cascade (see ``sweep.decision_report``)."""

    escalation_precision: float | None
    escalation_recall: float | None
    false_cheap_rate: float
    premium_overuse_rate: float
    containment: float
    latency_s_by_task: dict[str, Percentiles]
    valid_schema_rate_by_route: dict[str, float]


class CascadeFigures(DecisionMetrics, QualityCost):
    """A cascade's figures on one split: quality, cost, who answered, and its decisions."""

    answered_by: dict[str, float] = Field(description="Per tier, the share it answered.")


class FrontierPoint(DecisionMetrics, QualityCost):
    """A threshold combination on the upper cost-quality hull."""

    thresholds: dict[str, float]
    strong_fraction: float


class SweepPoint(QualityCost):
    """Every tier at the same position of the signal's grid."""

    grid_position: float
    threshold: float
    strong_fraction: float


class PromptViewFigures(Figures):
    """What of its prompts a prompt model embedded: the shared prefix and suffix it cut, and
    how many prompts were longer than the encoder's window."""

    shared_prefix_chars: int
    shared_suffix_chars: int
    truncated: int
    of: int

    @classmethod
    def of_view(cls, view: PromptView) -> PromptViewFigures:
        return cls(
            shared_prefix_chars=len(view.prefix),
            shared_suffix_chars=len(view.suffix),
            truncated=view.truncated,
            of=view.seen,
        )


class RouterReport(Figures):
    """Every metric of docs/metrics.md the operating points of one router determine."""

    rows: int
    weak: TierFigures
    strong: TierFigures
    apgr: float | None
    cpt: dict[str, float | None]
    not_applicable: list[str] = Field(description="Why APGR and CPT do not apply, if they do not.")
    aiq: float | None
    cost_to_parity: float | None
    cost_to_parity_vs_strong: float | None
    points: list[OperatingPoint]
    calls_curve: list[OperatingPoint]


class RandomRouter(RouterReport):
    seeds: int = Field(description="Random draws averaged (APGR, CPT and AIQ are their means).")


class TrainedRouter(RouterReport):
    prompt_view: PromptViewFigures


class CascadeRouterReport(RouterReport):
    frontier: list[FrontierPoint]
    threshold_sweep: list[SweepPoint]


class SweepReport(Figures):
    outcomes: str
    split: str
    routers: dict[str, SerializeAsAny[RouterReport]]


class ThresholdChoice(Figures):
    """Cascade thresholds chosen on the train split for an objective, and what they reach
    there."""

    thresholds: dict[str, float]
    train_quality: float
    train_cost: float
    min_probability: float | None = Field(
        default=None, description="The start router's level, when one was chosen with them."
    )


class Reliability(Figures):
    brier: float
    ece: float = Field(description="Expected calibration error, 10 bins.")


class RouterChoice(Figures):
    kind: str
    min_probability: float
    started_at_test: dict[str, float]
    prompt_view: PromptViewFigures


class CalibrationTest(Figures):
    calibrated_policy: CascadeFigures
    baselines: dict[str, QualityCost]
    random_same_mix: QualityCost = Field(
        description="Random routing with the same mix of answering tiers as the calibrated policy."
    )


class Calibrated(Figures):
    """What a calibration was fitted on and for: every calibration report starts so."""

    outcomes: str
    test_outcomes: str | None = Field(
        default=None, description="Reported on these rows instead of the test split."
    )
    signal: str
    objective: str
    calibrated_on: dict[str, str] = Field(
        description="Per tier, the model version the outcome rows were answered by (tiers "
        "whose rows name none are left out)."
    )


class CalibrationReport(Calibrated):
    method: str
    thresholds: dict[str, float]
    accept_probability: dict[str, float | None]
    reliability_test: dict[str, Reliability]
    train: QualityCost
    test: CalibrationTest
    router: RouterChoice | None = None
    policy: WrittenVersion | None = None


class KindFigures(Figures):
    rows: int
    quality: float


class RoutedFigures(QualityCost):
    """Ladders per question kind over a split (``kinds.routed``)."""

    calls_per_request: float
    answered_by: dict[str, float]
    by_kind: dict[str, KindFigures]


class RoutedAgainstTop(RoutedFigures):
    cost_vs_top_only: float
    quality_vs_top_only: float = Field(description="Quality minus the top tier alone's.")


class KindsWithoutALadder(Figures):
    min_rows: int
    kinds: dict[str, int] = Field(description="Per kind, its train rows (fewer than min_rows).")


class KindClassifierFigures(Figures):
    train_out_of_fold_accuracy: float
    test_accuracy: float
    min_probability: float
    prompt_view: PromptViewFigures


class KindTest(Figures):
    routed_by_kind: RoutedAgainstTop
    baselines: dict[str, QualityCost]


class KindCalibrationReport(Calibrated):
    """``tierserve eval calibrate --by-kind``: a ladder per question kind."""

    ladders: dict[str, str]
    kinds_without_a_ladder: KindsWithoutALadder
    kind_classifier: KindClassifierFigures
    train: RoutedFigures
    test: KindTest
    policy: WrittenVersion | None = None
