"""The outcome format, the RouterBench importer, cascade replay and the eval command."""

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tierserve.cli import main
from tierserve.errors import ConfigError
from tierserve.evaluate.importers import TierChoice, read_routerbench
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.sweep import cascade_sweep, run_cascade


def row(index: int, small: tuple[float, float], large_quality: float = 1.0) -> OutcomeRow:
    quality, confidence = small
    return OutcomeRow(
        id=f"r{index}",
        prompt=f"question {index}",
        outcomes={
            "small": TierOutcome(quality=quality, cost=1.0, signals={"conf": confidence}),
            "large": TierOutcome(quality=large_quality, cost=10.0, signals={"conf": 0.9}),
        },
    )


def test_a_cascade_pays_for_every_tier_it_tried() -> None:
    outcomes = OutcomeSet.of([row(0, (1.0, 0.8)), row(1, (0.0, 0.2))])
    assert outcomes.tiers == ("small", "large")  # ordered by cost
    kept, escalated = run_cascade(outcomes, "conf", [0.5])
    assert (kept.answered_by, kept.cost, kept.quality) == ("small", 1.0, 1.0)
    assert (escalated.answered_by, escalated.tried, escalated.cost) == (
        "large",
        ("small", "large"),
        11.0,
    )
    assert escalated.reasons == ("conf=0.20<0.50 => escalate large", "conf=0.90 => accept large")
    points, _, _ = cascade_sweep(outcomes, "conf", [0.0, 0.5, 1.0])
    by_threshold = {p.threshold: p for p in points}
    assert by_threshold[0.0].strong_fraction == 0.0 and by_threshold[0.0].quality == 0.5
    assert by_threshold[0.5].quality == 1.0 and by_threshold[0.5].cost == 6.0
    assert by_threshold[1.0].strong_fraction == 1.0 and by_threshold[1.0].cost == 11.0


def test_rows_missing_a_tier_are_refused_with_the_fix() -> None:
    incomplete = row(1, (0.0, 0.2)).model_copy(
        update={"outcomes": {"small": TierOutcome(quality=0, cost=1)}}
    )
    with pytest.raises(ConfigError, match="collect the missing ones"):
        OutcomeSet.of([row(0, (1.0, 0.8)), incomplete])


def test_routerbench_tables_become_ladders_of_any_length(tmp_path: Path) -> None:
    table = tmp_path / "routerbench.csv"
    table.write_text(
        "sample_id,prompt,eval_name,gpt-4,gpt-4|total_cost,mistral-7b,mistral-7b|total_cost,"
        "llama-70b,llama-70b|total_cost\n"
        "a,What is 2+2?,gsm8k,1.0,0.0030,1.0,0.0001,1.0,0.0009\n"
        "b,Prove it.,mmlu,1.0,0.0040,0.0,0.0002,0.5,0.0010\n"
    )
    chosen = TierChoice(tiers=("mistral-7b", "llama-70b", "gpt-4"))
    outcomes = read_routerbench(table, choice=chosen).outcomes
    assert outcomes.tiers == ("mistral-7b", "llama-70b", "gpt-4")
    assert outcomes.rows[1].outcomes["llama-70b"].quality == 0.5
    assert outcomes.rows[0].labels.task == "gsm8k"
    assert outcomes.cost("gpt-4") == pytest.approx(0.0035)


def test_eval_sweep_writes_a_report_and_a_plot(tmp_path: Path) -> None:
    rows = [row(i, (float(i % 2), 0.9 if i % 2 else 0.1)) for i in range(40)]
    rows = [r.model_copy(update={"split": "test"}) for r in rows]
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of(rows).write(path)
    out, plot = tmp_path / "report.json", tmp_path / "frontier.png"
    code = main(
        ["eval", "sweep", str(path), "--routers", "random,length", "--signal", "conf",
         "--out", str(out), "--plot", str(plot)]
    )  # fmt: skip
    assert code == 0 and plot.stat().st_size > 10_000
    result = json.loads(out.read_text())["routers"]
    assert set(result) == {"random", "length", "cascade:conf"}
    # The confidence separates right from wrong answers perfectly: the whole gap is recovered
    # with half the requests on the large tier.
    assert result["cascade:conf"]["cpt"]["95%"] == pytest.approx(0.475)
    assert result["cascade:conf"]["cost_to_parity"] == pytest.approx(6.0)
    # The frontier names the thresholds of each of its points, with their decision metrics.
    best = max(result["cascade:conf"]["frontier"], key=lambda point: point["quality"])
    assert best["quality"] == 1.0 and best["cost"] == pytest.approx(6.0)
    assert 0.1 < best["thresholds"]["small"] <= 0.9 and best["false_cheap_rate"] == 0.0
    # The threshold sweep: the lowest threshold keeps every small answer (half are wrong), the
    # highest escalates exactly the wrong ones.
    sweep = result["cascade:conf"]["threshold_sweep"]
    assert (sweep[0]["grid_position"], sweep[0]["quality"], sweep[0]["cost"]) == (0.0, 0.5, 1.0)
    assert (sweep[-1]["grid_position"], sweep[-1]["quality"]) == (1.0, 1.0)


def test_a_plot_without_matplotlib_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [row(i, (float(i % 2), 0.9 if i % 2 else 0.1)) for i in range(40)]
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of([r.model_copy(update={"split": "test"}) for r in rows]).write(path)
    # As in an install without the eval extra: importing matplotlib fails.
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    code = main(
        ["eval", "sweep", str(path), "--routers", "random", "--out", str(tmp_path / "r.json"),
         "--plot", str(tmp_path / "p.png")]
    )  # fmt: skip
    assert code == 2
    assert "pip install 'tierserve[eval]'" in capsys.readouterr().err


def test_decision_metrics_of_a_cascade() -> None:
    from tierserve.evaluate.sweep import decision_report

    rows = [
        row(0, (1.0, 0.8)),  # right and kept: contained
        row(1, (0.0, 0.2)),  # wrong and escalated: a correct escalation
        row(2, (1.0, 0.3)),  # right but escalated: premium overuse
        row(3, (0.0, 0.9)),  # wrong but kept: false cheap
    ]
    outcomes = OutcomeSet.of(rows)
    result = decision_report(outcomes, run_cascade(outcomes, "conf", [0.5]))
    assert result.escalation_precision == 0.5  # r1 of (r1, r2)
    assert result.escalation_recall == 0.5  # r1 of (r1, r3)
    assert result.false_cheap_rate == 0.25 and result.premium_overuse_rate == 0.25
    assert result.containment == 0.5


def test_valid_schema_rate_is_reported_per_route_over_structured_rows() -> None:
    from tierserve.evaluate.outcomes import Labels
    from tierserve.evaluate.sweep import decision_report

    def extraction(index: int, small_valid: bool, confidence: float) -> OutcomeRow:
        small = TierOutcome(
            quality=float(small_valid), cost=1.0, valid_schema=small_valid,
            signals={"conf": confidence},
        )  # fmt: skip
        large = TierOutcome(quality=1.0, cost=10.0, valid_schema=True, signals={"conf": 0.9})
        return OutcomeRow(
            id=f"x{index}",
            prompt="Extract the invoice",
            labels=Labels(task="extraction", structured=True),
            outcomes={"small": small, "large": large},
        )

    rows = [
        extraction(0, True, 0.8),  # valid, kept
        extraction(1, False, 0.2),  # invalid, escalated to a valid large answer
        extraction(2, False, 0.7),  # invalid but kept: the route's one invalid answer
        extraction(3, True, 0.9),
        row(4, (1.0, 0.8)).model_copy(update={"labels": Labels(task="faq")}),  # free text
    ]
    outcomes = OutcomeSet.of(rows)
    result = decision_report(outcomes, run_cascade(outcomes, "conf", [0.5]))
    assert result.valid_schema_rate_by_route == {"extraction": 0.75}
    everything_escalated = decision_report(outcomes, run_cascade(outcomes, "conf", [1.0]))
    assert everything_escalated.valid_schema_rate_by_route == {"extraction": 1.0}


def test_with_no_quality_gap_apgr_and_cpt_are_reported_as_not_applying(tmp_path: Path) -> None:
    rows = [row(i, (1.0, 0.5)).model_copy(update={"split": "test"}) for i in range(6)]
    path, out = tmp_path / "outcomes.jsonl", tmp_path / "report.json"
    OutcomeSet.of(rows).write(path)
    code = main(["eval", "sweep", str(path), "--routers", "random", "--signal", "conf",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    for item in json.loads(out.read_text())["routers"].values():
        assert item["apgr"] is None and set(item["cpt"].values()) == {None}
        assert item["cost_to_parity"] == 1.0  # the cheapest tier already matches the top one
        assert any("no quality gap" in reason for reason in item["not_applicable"])


def sweep_console(path: Path, *args: str) -> tuple[dict, str]:
    out = path.with_name("report.json")
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        assert main(["eval", "sweep", str(path), "--out", str(out), *args]) == 0
    return json.loads(out.read_text())["routers"], stdout.getvalue()


def test_a_top_tier_worse_than_the_cheapest_gets_no_apgr(tmp_path: Path) -> None:
    """A negative gap would make CPT interpolate a falling curve: said, not computed."""
    rows = [row(i, (1.0, 0.5), large_quality=float(i % 2)) for i in range(20)]
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of([r.model_copy(update={"split": "test"}) for r in rows]).write(path)
    routers, console = sweep_console(path, "--routers", "length")
    assert routers["length"]["apgr"] is None and routers["length"]["cpt"]["50%"] is None
    (reason,) = routers["length"]["not_applicable"]
    assert "top tier large (0.500) is not better than the cheapest small (1.000)" in reason
    assert "APGR=n/a" in console and "do not apply: no quality gap" in console


def test_a_router_with_one_score_for_all_is_called_degenerate(tmp_path: Path) -> None:
    rows = [row(i, (float(i % 2), 0.5)) for i in range(20)]
    for r in rows:
        r.prompt = "same length"  # the length router scores them all alike
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of([r.model_copy(update={"split": "test"}) for r in rows]).write(path)
    routers, console = sweep_console(path, "--routers", "length,random")
    assert routers["length"]["apgr"] is None
    assert any("degenerate" in reason for reason in routers["length"]["not_applicable"])
    assert routers["random"]["apgr"] is not None and routers["random"]["not_applicable"] == []
    assert "degenerate router" in console


def test_a_split_smaller_than_the_threshold_steps_is_said(tmp_path: Path) -> None:
    rows = [row(i, (float(i % 2), 0.5)).model_copy(update={"split": "test"}) for i in range(7)]
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of(rows).write(path)
    routers, _ = sweep_console(path, "--routers", "random")
    assert routers["random"]["apgr"] is None
    assert routers["random"]["not_applicable"] == [
        "7 rows are fewer than the 10 threshold steps: each step must move at least one request"
    ]
