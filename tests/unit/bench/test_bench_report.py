"""The serving report's arithmetic: overhead ratios, decision summaries, quality, tables."""

import math
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import decision_record
from tierserve.bench.plots import plot_report
from tierserve.bench.report import (
    decision_summary,
    failed_requests,
    labelled_quality,
    markdown_tables,
    overhead,
    overhead_breakdown,
    percentile,
    routing_time,
)
from tierserve.observe.decision_record import StageLatency
from tierserve.policy.step import Outcome, Step


def metrics(**values: float) -> dict[str, Any]:
    base = dict.fromkeys(
        ("mean_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p99_itl_ms", "mean_e2el_ms",
         "median_ttft_ms", "median_e2el_ms", "p99_e2el_ms"), 100.0,
    )  # fmt: skip
    base.update(request_throughput=2.0, output_throughput=64.0, request_goodput=None)
    base.update(values)
    return base


def test_overhead_is_the_percent_added_over_direct_and_the_throughput_kept() -> None:
    direct = metrics(mean_e2el_ms=1000.0, mean_ttft_ms=200.0, output_throughput=100.0)
    pinned = metrics(mean_e2el_ms=1050.0, mean_ttft_ms=260.0, output_throughput=86.0)
    result = overhead(direct, pinned)
    assert result["mean_e2el_ms_overhead_pct"] == pytest.approx(5.0)
    assert result["mean_ttft_ms_overhead_pct"] == pytest.approx(30.0)
    assert result["output_throughput_ratio"] == pytest.approx(0.86)


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


def escalated(request_id: str) -> Any:
    first = decision_record(request_id, reason="conf=0.20<0.40 => escalate", outcome="accept")
    step = first.steps[0]
    low = step.model_copy(update={"outcome": Outcome.ESCALATE})
    high = Step(tier="large", outcome=Outcome.ACCEPT, reason="accept large", cost_usd=0.5)
    return first.model_copy(update={"steps": [low, high], "answered_by": "large", "cost_usd": 0.75})


def test_decision_summary_counts_shares_escalations_calls_and_routing_time() -> None:
    plain = decision_record("r1").model_copy(update={"cost_usd": 0.25})
    summary = decision_summary([plain, escalated("r2")])
    assert summary["tier_shares"] == {"large": 0.5, "small": 0.5}
    assert summary["escalation_rate"] == 0.5
    assert summary["upstream_calls_per_request"] == 1.5
    assert summary["cost_per_request_usd"] == pytest.approx(0.5)
    assert summary["routing_ms_p99"] >= summary["routing_ms_p50"] >= 0
    assert decision_summary([]) == {"records": 0}


def planned(request_id: str, task_source: str, policy_ms: float) -> Any:
    latency = StageLatency(policy_s=policy_ms / 1000, inference_s=0.5, validation_s=0.0, total_s=1)
    return decision_record(request_id).model_copy(
        update={"task_source": task_source, "latency": latency}
    )


def test_routing_time_is_split_by_how_the_task_was_found() -> None:
    records = [
        planned("a", "hint", 0.2),
        planned("b", "rule", 0.4),
        planned("c", "classifier", 30.0),
        planned("d", "classifier", 20.0),
        planned("e", "fallback", 0.3),
    ]
    timing = routing_time(records)
    assert timing["records"] == 5 and timing["p50"] == pytest.approx(0.4)
    by_source = timing["by_task_source"]
    assert set(by_source) == {"hint", "rule", "classifier", "fallback"}
    assert by_source["classifier"]["records"] == 2
    assert by_source["classifier"]["p50"] == pytest.approx(25.0)
    assert by_source["hint"]["p99"] == pytest.approx(0.2)


def test_labelled_quality_is_the_share_naming_an_accepted_answer() -> None:
    texts = ["The capital is Paris.", "I think it is Lyon", "tokyo!"]
    assert labelled_quality(texts, [["Paris"], ["Paris"], ["Tokyo"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 answers for 3 labelled prompts"):
        labelled_quality(texts[:2], [["a"], ["b"], ["c"]])


def sample_report() -> dict[str, Any]:
    runs = [
        {"target": t, "dataset": "random", "load": f"c{c}", "metrics": metrics(mean_e2el_ms=e)}
        for t, c, e in (("direct/small", 1, 100.0), ("pinned/small", 1, 104.0),
                        ("direct/small", 16, 400.0), ("pinned/small", 16, 480.0))
    ]  # fmt: skip
    return {
        "runs": runs,
        "overhead": [
            {"load": "c1", "mean_e2el_ms_overhead_pct": 4.0, "target_pct": 5.0, "met": True},
            {"load": "c16", "mean_e2el_ms_overhead_pct": 20.0, "target_pct": 10.0, "met": False},
        ],
        "labelled": [
            {
                "target": "cascade",
                "quality": 0.85,
                "request_throughput": 0.5,
                "mean_ttft_ms": 900.0,
                "decisions": decision_summary([decision_record("r1")]),
            },
        ],
        "machine": {"cpu": "test cpu", "host": "cpu (AVX2)"},
    }


def test_tables_say_which_overhead_targets_were_missed_and_by_how_much() -> None:
    text = markdown_tables(sample_report())
    lines = text.splitlines()
    c1 = next(line for line in lines if line.startswith("| c1 "))
    assert "4.0 %" in c1 and "| met |" in c1
    c16 = next(line for line in lines if line.startswith("| c16 "))
    assert "20.0 %" in c16 and "missed (≤10 %)" in c16
    assert any(line.startswith("| cascade | 0.85 |") and "small 100%" in line for line in lines)


def test_the_plot_is_written(tmp_path: Path) -> None:
    plot_report(sample_report(), tmp_path / "serving.png")
    assert (tmp_path / "serving.png").stat().st_size > 10_000


def test_overhead_breakdown_splits_the_added_time_and_adds_up() -> None:
    direct = metrics(mean_e2el_ms=1000.0)
    pinned = metrics(mean_e2el_ms=1100.0)
    stages = {"tier_calls": 1040.0, "gateway_total": 1070.0, "policy": 20.0, "validation": 1.0}
    parts = overhead_breakdown(direct, pinned, stages)
    assert parts == {
        "added_ms": 100.0,
        "tier_calls_ms": 40.0,
        "gateway_own_ms": 30.0,
        "outside_handler_ms": 30.0,
    }
    assert sum(v for k, v in parts.items() if k != "added_ms") == parts["added_ms"]


def test_failed_requests_are_named_by_target_and_load() -> None:
    report = sample_report()
    assert failed_requests(report) == {}
    report["runs"][3]["metrics"]["failed"] = 2
    assert failed_requests(report) == {"pinned/small c16": 2}
