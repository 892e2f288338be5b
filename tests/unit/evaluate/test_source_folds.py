"""Thresholds chosen leaving one source of questions out: the objective must hold on every
source they are chosen on, and the report shows the source left out as it is."""

import json
from pathlib import Path

from tests.fakes import FunctionEncoder, sum_axis
from tierserve.cli import main
from tierserve.evaluate.calibrate import Objective
from tierserve.evaluate.outcomes import Labels, OutcomeRow, OutcomeSet, TierOutcome
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


def kinds_source(name: str, n: int, small_right_on_facts: bool) -> OutcomeSet:
    """Sums only large gets right; facts small gets right, surely (unless this source's facts
    fool it: as sure, and wrong)."""
    rows = []
    for index in range(n):
        kind = "math" if index % 2 else "fact"
        small_right = kind == "fact" and small_right_on_facts
        prompt = f"{name}: the sum of {index}" if kind == "math" else f"{name}: capital {index}"
        rows.append(
            OutcomeRow(
                id=f"{name}-{index}",
                prompt=prompt,
                labels=Labels(kind=kind),
                outcomes={
                    "small": TierOutcome(
                        quality=float(small_right), cost=1.0, signals={"conf_q10": 0.9}
                    ),
                    "large": TierOutcome(quality=1.0, cost=10.0, signals={"conf_q10": 0.9}),
                },
            )
        )
    return OutcomeSet.of(rows, TIERS)


def test_ladders_per_kind_are_reported_on_the_source_they_never_saw() -> None:
    from tierserve.evaluate.source_kind_folds import leave_one_source_out_by_kind

    sources = {
        "faq": kinds_source("faq", 40, True),
        "help": kinds_source("help", 40, True),
        "quiz": kinds_source("quiz", 40, False),
    }
    folds = {
        fold.source: fold
        for fold in leave_one_source_out_by_kind(
            sources,
            "conf_q10",
            Objective(quality_share=1.0),
            FunctionEncoder(sum_axis),
            min_rows=10,
        )
    }
    # Chosen on faq and help: facts on small alone, sums on large. Right on them (and cheaper
    # than large alone), half wrong on quiz, whose facts small answers as surely and wrongly.
    quiz = folds["quiz"]
    assert quiz.ladders == {"fact": "small", "math": "large"}
    assert quiz.in_sample.quality == 1.0 and quiz.kind_accuracy_left_out == 1.0
    assert quiz.left_out.quality == 0.5 and quiz.left_out.cost_vs_top_only < 1.0
    # Chosen with quiz's facts, where small is as sure wrong as right, no threshold trusts
    # small: faq left out loses no quality, and saves nothing either.
    assert folds["faq"].ladders == {"fact": "large", "math": "large"}
    assert folds["faq"].left_out.quality_vs_top_only == 0.0
    assert folds["faq"].left_out.cost_vs_top_only == 1.0
