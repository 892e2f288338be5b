"""Calibration, threshold choice for an objective, and the policy file it writes."""

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import STACK_TIERS
from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import (
    Objective,
    calibrate,
    choose_thresholds,
    reliability,
    retuned,
    signal_grid,
)
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.policy.spec import load_policy
from tierserve.policy.versions import write_version

ROOT = Path(__file__).resolve().parents[3]


def synthetic(rows: int = 400, seed: int = 0) -> OutcomeSet:
    """Small answers are right with probability equal to their confidence; medium with
    confidence 0.2 higher; large is right 90 % of the time."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(rows):
        small_conf, medium_conf = rng.random(), rng.random()
        medium_p = min(1.0, medium_conf + 0.2)
        outcomes = {
            "small": TierOutcome(
                quality=float(rng.random() < small_conf), cost=1.0, signals={"conf": small_conf}
            ),
            "medium": TierOutcome(
                quality=float(rng.random() < medium_p), cost=3.0, signals={"conf": medium_conf}
            ),
            "large": TierOutcome(quality=float(rng.random() < 0.9), cost=10.0, signals={"conf": 1}),
        }
        split = "train" if index % 2 else "test"
        out.append(OutcomeRow(id=f"r{index}", prompt=f"q{index}", split=split, outcomes=outcomes))
    return OutcomeSet.of(out)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrated_probabilities_track_the_truth(method: str) -> None:
    data = synthetic()
    fitted = calibrate(data.split("train"), "conf", method)  # type: ignore[arg-type]
    assert set(fitted) == {"small", "medium"}
    low, high = fitted["small"].probability([0.1, 0.9])
    assert low < 0.3 and high > 0.7
    assert reliability(data.split("test"), fitted["small"]).ece < 0.12


def test_thresholds_meet_the_objective_at_the_least_cost() -> None:
    data = synthetic()
    train = data.split("train")
    grid = signal_grid(train, "conf")
    chosen = choose_thresholds(train, "conf", Objective(quality_share=0.95), grid)
    assert chosen.train_quality >= 0.95 * train.quality("large")
    assert chosen.train_cost < train.cost("large")
    capped = choose_thresholds(train, "conf", Objective(max_cost=4.0), grid)
    assert capped.train_cost <= 4.0
    with pytest.raises(ConfigError, match="no thresholds meet"):
        choose_thresholds(train, "conf", Objective(max_cost=0.5), grid)
    with pytest.raises(ConfigError, match="exactly one"):
        Objective()


def test_the_chosen_thresholds_become_a_new_valid_policy_version(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "serve_configs/policies", policies)
    source = policies / "support.yaml"
    out = policies / "support-calibrated.yaml"
    policy = load_policy(source, STACK_TIERS)
    changed = retuned(policy, "faq", {"small": 0.3125, "medium": float("inf")})
    written = write_version(
        changed.model_copy(update={"confidence_signal": "conf_q0"}),
        source=source,
        out=out,
        provenance="calibrated on test data\nobjective: x",
        suffix="calibrated",
    )
    assert written.version.startswith(policy.version + "+calibrated.") and written.path == str(out)
    calibrated = load_policy(out, STACK_TIERS)
    faq = next(r for r in calibrated.routes if r.name == "faq")
    assert [(s.tier, s.min_confidence) for s in faq.ladder] == [("small", 0.3125), ("large", None)]
    # Calibrated on conf_q0: the gateway serving it measures the least likely token.
    assert calibrated.confidence_signal == "conf_q0" and calibrated.confidence_quantile == 0.0
    assert out.read_text().startswith("# calibrated on test data\n# objective: x\n")
    with pytest.raises(ConfigError, match="not beside"):
        write_version(
            changed, source=source, out=tmp_path / "elsewhere.yaml", provenance="", suffix="x"
        )


def test_eval_calibrate_reports_and_writes_the_policy(tmp_path: Path) -> None:
    import json

    from tierserve.cli import main

    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "serve_configs/policies", policies)
    outcomes = tmp_path / "outcomes.jsonl"
    synthetic().write(outcomes)
    report = tmp_path / "report.json"
    argv = ["eval", "calibrate", str(outcomes), "--signal", "conf", "--policy"]
    argv += [str(policies / "support.yaml"), "--out", str(report)]
    # A policy's thresholds must be on a signal the gateway measures: refused before any work.
    assert main(argv) == 2 and not report.exists()
    # Answered by GPTQ small and medium (as collected on an AVX-512 host), large unrecorded.
    served = {"small": "s@gptq-w4a16", "medium": "m@gptq-w4a16", "large": None}
    OutcomeSet.of(as_served(synthetic().rows, served)).write(outcomes)
    argv[argv.index("conf")] = "conf_q10"
    assert main(argv) == 0
    result = json.loads(report.read_text())
    test = result["test"]
    assert test["calibrated_policy"]["cost"] < test["baselines"]["large_only"]["cost"]
    assert test["calibrated_policy"]["quality"] > test["baselines"]["small_only"]["quality"]
    assert set(result["thresholds"]) == {"small", "medium"}
    written = load_policy(policies / "support-calibrated.yaml", STACK_TIERS)
    assert written.version == result["policy"]["version"]
    # Bound to the versions that answered; large keeps what the source policy recorded.
    source = load_policy(policies / "support.yaml", STACK_TIERS)
    assert written.calibrated_on == {
        "small": "s@gptq-w4a16",
        "medium": "m@gptq-w4a16",
        "large": source.calibrated_on["large"],
    }
    assert result["calibrated_on"] == {"small": "s@gptq-w4a16", "medium": "m@gptq-w4a16"}


def test_rows_of_one_tier_from_two_model_versions_are_refused(tmp_path: Path) -> None:
    rows = synthetic(rows=20).rows
    mixed = [
        *as_served(rows[:10], {"small": "s@int8-w8a8"}),
        *as_served(rows[10:], {"small": "s@gptq-w4a16"}),
    ]
    with pytest.raises(ConfigError, match=r"tier 'small' come from 2 model versions"):
        OutcomeSet.of(mixed).models()


def as_served(rows: Sequence[OutcomeRow], models: dict[str, str | None]) -> list[OutcomeRow]:
    """``rows`` with their signal named as the gateway names it and each tier's answers from
    the model version ``models`` gives it."""
    return [
        row.model_copy(
            update={
                "outcomes": {
                    tier: outcome.model_copy(
                        update={
                            "signals": {"conf_q10": outcome.signals.get("conf", 0.0)},
                            "model": models.get(tier),
                        }
                    )
                    for tier, outcome in row.outcomes.items()
                }
            }
        )
        for row in rows
    ]


def test_the_shipped_calibrated_policy_is_the_one_the_readme_reports() -> None:
    import json

    report = json.loads((ROOT / "benchmarks/results/calibrate_embedded_gsm8k.json").read_text())
    calibrated = load_policy(ROOT / report["policy"]["path"], STACK_TIERS)
    original = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)
    assert calibrated.version == report["policy"]["version"]
    assert calibrated.version.startswith(original.version + "+calibrated.")
    faq = next(route for route in calibrated.routes if route.name == "faq")
    assert {step.tier: step.min_confidence for step in faq.ladder[:-1]} == {
        tier: round(threshold, 4) for tier, threshold in report["thresholds"].items()
    }
    # Only the faq route's thresholds changed.
    others = [r.model_dump() for r in calibrated.routes if r.name != "faq"]
    assert others == [r.model_dump() for r in original.routes if r.name != "faq"]


def test_calibrate_can_report_on_a_source_it_never_saw(tmp_path: Path) -> None:
    import json

    from tierserve.cli import main

    chosen_on, left_out = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    OutcomeSet.of(as_served(synthetic(seed=1).rows, {})).write(chosen_on)
    # Another source whose small answers are all wrong whatever their confidence.
    theirs = [
        row.model_copy(
            update={"outcomes": {**row.outcomes, "small": row.outcomes["small"].model_copy(
                update={"quality": 0.0})}}
        )
        for row in as_served(synthetic(seed=2).rows, {})
    ]  # fmt: skip
    OutcomeSet.of(theirs).write(left_out)
    report = tmp_path / "report.json"
    argv = ["eval", "calibrate", str(chosen_on), "--signal", "conf_q10"]
    assert main([*argv, "--test-outcomes", str(left_out), "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["test_outcomes"] == str(left_out)
    # The test figures are the other source's, where small is never right.
    assert result["test"]["calibrated_policy"]["answered_by"]["small"] > 0
    assert result["test"]["baselines"]["small_only"]["quality"] == 0.0
