"""The planning benchmark drives explain on both paths and reports what each found."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.fakes import http_app, support_service
from tierserve.bench.planning import planning_benchmark
from tierserve.bench.report import markdown_tables


def test_both_paths_are_measured_per_caller_count_and_the_classifier_path_classifies(
    tmp_path: Path,
) -> None:
    chat, engines, _ = support_service(tmp_path)
    transport = httpx.ASGITransport(app=http_app(chat))
    prompts = ["What is the capital of Peru?", "my parcel never arrived"]
    result = planning_benchmark(
        "http://gateway", prompts, replicas=2, callers=(1, 4), min_requests=6, transport=transport
    )
    runs = {(r["path"], r["callers"]): r for r in result["runs"]}
    assert set(runs) == {("classifier", 1), ("classifier", 4), ("hint", 1), ("hint", 4)}
    assert runs[("classifier", 4)]["requests"] == 32  # 8 a caller, above the minimum
    assert runs[("classifier", 1)]["task_sources"] == {"classifier": 8}
    assert runs[("hint", 4)]["task_sources"] == {"hint": 32}
    assert all(r["decisions_per_s_per_replica"] > 0 for r in runs.values())
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in runs.values())
    assert set(result["ratios"]) == {"classifier_vs_hint_p50_c1", "classifier_vs_hint_p50_c4"}
    # Planning generates nothing.
    assert all(not engine.requests for engine in engines.values())
    table = markdown_tables({"runs": [], "overhead": [], "labelled": [], "planning": result})
    assert "| classifier | 4 |" in table and "| hint | 1 |" in table
