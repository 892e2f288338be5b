"""`tierserve eval fields`: field thresholds chosen on a train split through the replay kernel,
and figures that tell a flagged wrong answer from a silent one."""

import json
import math
from pathlib import Path

import pytest

from tests.fakes import STACK_TIERS
from tierserve.cli import main
from tierserve.errors import ConfigError
from tierserve.evaluate.fields import (
    choose_field_thresholds,
    figures,
    read_field_cases,
    tier_alone,
    with_review,
    with_thresholds,
)
from tierserve.policy.compose import CALLER_SCHEMA_CHECKS as CHECKS
from tierserve.policy.ladder import Ladder
from tierserve.policy.spec import LadderStepSpec, load_policy
from tierserve.policy.step import Outcome, Step
from tierserve.signals.fields import FieldReading
from tierserve.validate import ValidationResult

ROOT = Path(__file__).resolve().parents[3]

COST = {"small": 0.1, "medium": 0.3, "large": 1.0}


def step(tier: str, date_confidence: float) -> dict:
    recorded = Step(
        tier=tier,
        outcome=Outcome.ACCEPT,
        reason="pinned",
        confidence=0.99,
        constrained=True,
        validators=CHECKS,
        validations=tuple(ValidationResult(name, True) for name in CHECKS),
        fields=(
            FieldReading("date", date_confidence, 2, "d"),
            FieldReading("total", 0.99, 2, "t"),
        ),
        cost_usd=COST[tier],
    )
    return json.loads(recorded.model_dump_json())


def rows(n: int, split: str) -> list[dict]:
    """Small is unsure of the date exactly when it is wrong (every other case); medium is
    right and sure on all but one in four; large is always right."""
    out = []
    for index in range(n):
        small_wrong = index % 2 == 0
        medium_wrong = index % 4 == 0
        for tier, wrong, confidence in (
            ("small", small_wrong, 0.3 if small_wrong else 0.95),
            ("medium", medium_wrong, 0.5 if medium_wrong else 0.97),
            ("large", False, 0.9),
        ):
            out.append(
                {
                    "id": f"{split}-{index}",
                    "split": split,
                    "tier": tier,
                    "step": step(tier, confidence),
                    "correct": {"date": not wrong, "total": True},
                }
            )
    return out


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows(8, "train") + rows(8, "test")))
    return path


LADDER = Ladder(
    steps=tuple(
        LadderStepSpec(tier=t, constrained=True, validators=list(CHECKS))
        for t in ("small", "medium", "large")
    ),
    on_exhausted="safe_failure",
)


def test_ungated_small_is_silently_wrong_and_field_gates_catch_it(rows_file: Path) -> None:
    cases = read_field_cases(rows_file)
    test = [c for c in cases if c.split == "test"]
    small = figures(tier_alone(LADDER, "small"), test)
    assert small.all_fields_right == 0.5 and small.silent_wrong == 0.5
    chosen = choose_field_thresholds(
        LADDER, [c for c in cases if c.split == "train"], max_silent_wrong=0.0
    )
    assert chosen.thresholds["small"] > 0.3 and chosen.thresholds["medium"] > 0.5
    routed = figures(with_thresholds(LADDER, list(chosen.thresholds.values())), test)
    assert routed.silent_wrong == 0.0 and routed.all_fields_right == 1.0
    large = figures(tier_alone(LADDER, "large"), test)
    assert routed.cost_per_case < large.cost_per_case
    # small on every case, medium on the half small doubted, large on a quarter
    assert math.isclose(routed.calls_per_case, 1.75)


def test_the_command_writes_a_policy_version_with_the_field_thresholds(
    rows_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_policy = ROOT / "serve_configs/policies/.test-fields.yaml"
    try:
        code = main(
            [
                "eval",
                "fields",
                str(rows_file),
                "--policy",
                str(ROOT / "serve_configs/policies/support.yaml"),
                "--by",
                "name",
                "--max-silent-wrong",
                "0",
                "--out-policy",
                str(out_policy),
            ]
        )
        assert code == 0
        report = json.loads(capsys.readouterr().out)
        assert report["field_gates"]["test"]["silent_wrong"] == 0.0
        # The shipped route is medium then large: medium is wrong on one case in four.
        assert report["test_untuned"]["medium_only"]["silent_wrong"] == 0.25
        # Whole-answer confidence (0.99 on every answer here) cannot tell the wrong ones: only
        # skipping to large would meet the objective, which is not below large's cost.
        whole = report["whole_answer_gates"]
        assert whole["thresholds"] is None and "below large's cost" in whole["note"]
        written = load_policy(out_policy, STACK_TIERS)
        route = next(r for r in written.routes if r.name == "extraction")
        assert [s.min_field_confidence for s in route.ladder] == [
            report["field_gates"]["thresholds"][s.tier] or None for s in route.ladder
        ]
    finally:
        out_policy.unlink(missing_ok=True)


def test_a_broken_row_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(rows(1, "train")[0]) + '\n{"id": 1}\n')
    with pytest.raises(ConfigError, match=r"rows.jsonl:2: not a field-outcome row"):
        read_field_cases(path)


def judged_rows(n: int, split: str) -> list[dict]:
    """A judgement field both tiers get wrong alike: on every other case medium and large both
    answer the wrong severity, medium at confidence 0.7 (0.95 when right); the date is always
    right. Escalating buys nothing there; marking it does."""

    def recorded(tier: str, severity: float) -> dict:
        data = step(tier, 0.99)
        data["fields"].append({"path": "severity", "confidence": severity, "tokens": 1})
        data["fields"][-1]["digest"] = "s"
        return data

    out = []
    for index in range(n):
        wrong = index % 2 == 0
        for tier in ("medium", "large"):
            out.append(
                {
                    "id": f"{split}-{index}",
                    "split": split,
                    "tier": tier,
                    "step": recorded(tier, 0.7 if wrong else 0.95),
                    "correct": {"date": True, "total": True, "severity": not wrong},
                }
            )
    return out


TWO_STEPS = Ladder(
    steps=tuple(
        LadderStepSpec(tier=t, constrained=True, validators=list(CHECKS))
        for t in ("medium", "large")
    ),
)


def test_a_recurring_judgement_error_is_marked_for_review_not_escalated(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in judged_rows(8, "train")))
    train = read_field_cases(path)
    ungated = figures(with_thresholds(TWO_STEPS, [0.0, 0.0]), train)
    assert ungated.silent_wrong == 0.5
    chosen = choose_field_thresholds(TWO_STEPS, train, max_silent_wrong=0.0)
    # Medium's answer is kept (large is no better on severity) with the severity marked.
    assert chosen.review == {"medium": {"severity": 0.8}}
    assert chosen.train.silent_wrong == 0.0 and chosen.train.flagged == 0.5
    assert chosen.train.calls_per_case == 1.0
    tuned = with_review(with_thresholds(TWO_STEPS, list(chosen.thresholds.values())), {})
    assert figures(tuned, train).silent_wrong > 0  # without the review, silent again
    cheapest = choose_field_thresholds(TWO_STEPS, train, max_silent_wrong=0.0, prefer="cheapest")
    assert cheapest.train.cost_per_case <= chosen.train.cost_per_case


def test_marking_another_field_does_not_count_as_catching_a_wrong_one(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in judged_rows(4, "train")))
    cases = read_field_cases(path)
    # The total (always right) is under its gate on every answer: flagged, yet the wrong
    # severity beside it was never marked.
    marks_total = Ladder(
        steps=(
            LadderStepSpec(
                tier="medium",
                constrained=True,
                validators=list(CHECKS),
                min_field_confidence=0.999,
                gated_fields=["total"],
            ),
        )
    )
    found = figures(marks_total, cases)
    assert found.flagged == 1.0 and found.silent_wrong == 0.5


def family_rows(family: str, n: int, sure_when_wrong: bool) -> list[dict]:
    """Medium wrong on the date in one case of two, unsure of it (0.3) unless
    ``sure_when_wrong`` (then 0.97, like its right answers); large always right."""
    out = []
    for index in range(n):
        wrong = index % 2 == 0
        confidence = 0.97 if (not wrong or sure_when_wrong) else 0.3
        for tier, right, sure in (("medium", not wrong, confidence), ("large", True, 0.9)):
            recorded = json.loads(
                Step.model_validate(step(tier, sure))
                .model_copy(
                    update={
                        "fields": (
                            FieldReading("date", sure, 2, "d", "date"),
                            FieldReading("total", 0.99, 2, "t", "number"),
                        )
                    }
                )
                .model_dump_json()
            )
            out.append(
                {
                    "id": f"{family}-{index}",
                    "kind": family,
                    "split": "train",
                    "tier": tier,
                    "step": recorded,
                    "correct": {"date": right, "total": True},
                }
            )
    return out


def test_gates_by_kind_are_reported_on_the_family_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two families where a date gate catches medium's wrong dates, one where medium is sure
    of its wrong dates: chosen on the others, the gate holds on a like family and the report
    shows it failing on the unlike one, not an average that hides it."""
    rows = family_rows("invoice", 8, False) + family_rows("order", 8, False)
    rows += family_rows("shipment", 8, True)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "report.json"
    policy = str(ROOT / "serve_configs/policies/support.yaml")
    assert main(["eval", "fields", str(path), "--policy", policy, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    folds = report["leave_one_family_out"]
    assert set(folds) == {"invoice", "order", "shipment"}
    assert folds["invoice"]["gates"]["date"] > 0.3
    assert folds["invoice"]["left_out"]["silent_wrong"] == 0.0
    assert folds["shipment"]["left_out"]["silent_wrong"] == 0.5  # sure and wrong: unseen
    assert report["left_out_summary"]["worst_silent_wrong"] == 0.5
    assert folds["invoice"]["left_out"]["cost_vs_top_alone"] < 2
