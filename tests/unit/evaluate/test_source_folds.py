"""Thresholds chosen leaving one source of questions out: the objective must hold on every
source they are chosen on, and the report shows the source left out as it is."""

import json
from pathlib import Path

from tierserve.cli import main
from tierserve.evaluate.calibrate import Objective
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.source_folds import choose_by_worst_source, leave_one_source_out

TIERS = ("small", "large")


def source(name: str, n: int, small_sure_when_wrong: bool) -> OutcomeSet:
    """Small right on every other question; its confidence tells which, unless it is as sure
    of its wrong answers (a source phrased so that it is confidently wrong)."""
    rows = []
    for index in range(n):
        right = index % 2 == 0
        confidence = 0.9 if right or small_sure_when_wrong else 0.2
        rows.append(
            OutcomeRow(
                id=f"{name}-{index}",
                prompt=f"q{index}",
                outcomes={
                    "small": TierOutcome(
                        quality=float(right), cost=1.0, signals={"conf_q10": confidence}
                    ),
                    "large": TierOutcome(quality=1.0, cost=10.0, signals={"conf_q10": 0.9}),
                },
            )
        )
    return OutcomeSet.of(rows, TIERS)


SOURCES = {
    "faq": source("faq", 10, False),
    "sums": source("sums", 10, False),
    "trivia": source("trivia", 10, True),
}


def test_the_worst_source_decides() -> None:
    chosen = choose_by_worst_source(SOURCES, "conf_q10", Objective(quality_share=1.0))
    # Only sending everything to large keeps trivia's quality: no threshold trusts small.
    assert chosen.worst_quality_vs_top_alone == 1.0
    assert chosen.by_source["trivia"].cost_vs_top_alone > 1.0


def test_a_source_left_out_is_reported_as_it_is(tmp_path: Path) -> None:
    folds = {f.source: f for f in leave_one_source_out(SOURCES, "conf_q10", Objective(0.95))}
    # Chosen on faq and sums, small is trusted above 0.2: right on them, not on trivia.
    assert folds["trivia"].left_out.quality_vs_top_alone == 0.5
    assert folds["trivia"].in_sample["faq"].quality_vs_top_alone == 1.0
    assert folds["faq"].left_out.quality_vs_top_alone == 1.0
    paths = []
    for name, outcomes in SOURCES.items():
        paths.append(tmp_path / f"{name}.jsonl")
        outcomes.write(paths[-1])
    out = tmp_path / "report.json"
    assert main(["eval", "sources", *map(str, paths), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["left_out_summary"]["trivia"]["quality_vs_top_alone"] == 0.5


def test_an_unreadable_objective_is_refused_naming_it() -> None:
    import pytest

    from tierserve.errors import ConfigError

    assert Objective.parse("max_cost=0.001") == Objective(max_cost=0.001)
    for bad in ("quality_share=x", "quality=0.9", "quality_share="):
        with pytest.raises(ConfigError, match=f"cannot read objective '{bad}'"):
            Objective.parse(bad)
