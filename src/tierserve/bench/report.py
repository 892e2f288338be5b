"""From the client's results and the stack's decision records to the report's ratios.

Pure: no servers, no clients. Every ratio compares runs taken in the same benchmark run on the
same prompts, so a noisy machine moves both sides alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from tierserve.observe.decision_record import DecisionRecord

__all__ = [
    "FIELD_KEYS",
    "OVERHEAD_TARGETS",
    "decision_summary",
    "failed_requests",
    "labelled_quality",
    "markdown_tables",
    "overhead",
    "overhead_breakdown",
    "percentile",
    "routing_time",
]

FIELD_KEYS = (
    "completed", "failed", "duration", "request_throughput", "request_goodput",
    "output_throughput", "total_token_throughput",
    "mean_ttft_ms", "median_ttft_ms", "p99_ttft_ms",
    "mean_tpot_ms", "median_tpot_ms", "p99_tpot_ms",
    "mean_itl_ms", "median_itl_ms", "p99_itl_ms",
    "mean_e2el_ms", "median_e2el_ms", "p99_e2el_ms",
)  # fmt: skip
"""The ``vllm bench serve`` keys the report keeps for each run."""

OVERHEAD_TARGETS = {1: 5.0, 16: 10.0}
"""Gateway + policy overhead on mean end-to-end latency allowed at a concurrency, in percent."""


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, ``q`` in [0, 100]; NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def overhead(direct: Mapping[str, Any], pinned: Mapping[str, Any]) -> dict[str, float]:
    """The pinned tier through tierserve against direct vLLM on the same checkpoint: percent
    added to each latency, and the share of the direct server's throughput kept."""
    result = {
        f"{key}_overhead_pct": 100.0 * (pinned[key] / direct[key] - 1.0)
        for key in ("mean_ttft_ms", "mean_tpot_ms", "mean_e2el_ms", "p99_e2el_ms")
        if direct.get(key)
    }
    if direct.get("output_throughput"):
        result["output_throughput_ratio"] = (
            pinned["output_throughput"] / direct["output_throughput"]
        )
    return result


def decision_summary(records: Iterable[DecisionRecord]) -> dict[str, Any]:
    """Tier shares, escalations, upstream calls, cost and routing time over ``records``."""
    records = list(records)
    if not records:
        return {"records": 0}
    shares = Counter(r.answer_source for r in records)
    calls = [sum(1 for s in r.steps if s.tier is not None) for r in records]
    policy_ms = [r.latency.policy_s * 1000 for r in records]

    def mean_ms(seconds: Iterable[float]) -> float:
        return float(np.mean(list(seconds))) * 1000

    return {
        "records": len(records),
        "tier_shares": {k: v / len(records) for k, v in sorted(shares.items())},
        "escalation_rate": sum(c > 1 for c in calls) / len(records),
        "upstream_calls_per_request": sum(calls) / len(records),
        "cost_per_request_usd": sum(r.cost_usd for r in records) / len(records),
        "routing_ms_p50": percentile(policy_ms, 50),
        "routing_ms_p99": percentile(policy_ms, 99),
        # Where a request's time went inside the gateway (means, ms): planning, the tier calls as
        # the gateway saw them (Ray hop + tier replica + engine), validation and gate, and the
        # whole gateway handler up to the decision record.
        "stage_ms": {
            "policy": mean_ms(r.latency.policy_s for r in records),
            "tier_calls": mean_ms(r.latency.inference_s for r in records),
            "validation": mean_ms(r.latency.validation_s for r in records),
            "gateway_total": mean_ms(r.latency.total_s for r in records),
        },
    }


def overhead_breakdown(
    direct: Mapping[str, Any], pinned: Mapping[str, Any], stages: Mapping[str, float]
) -> dict[str, float]:
    """The pinned tier's added mean end-to-end time, split (ms): the tier calls as the gateway
    saw them against direct vLLM's whole request (Ray hop, tier replica, stream batching), the
    gateway's own work around them (planning, validation, bookkeeping), and what lies outside
    the gateway's handler (HTTP proxy, decision-log commit, response)."""
    client_ms, direct_ms = pinned["mean_e2el_ms"], direct["mean_e2el_ms"]
    return {
        "added_ms": client_ms - direct_ms,
        "tier_calls_ms": stages["tier_calls"] - direct_ms,
        "gateway_own_ms": stages["gateway_total"] - stages["tier_calls"],
        "outside_handler_ms": client_ms - stages["gateway_total"],
    }


def routing_time(records: Iterable[DecisionRecord]) -> dict[str, Any]:
    """Routing-decision time p50/p99 in ms, over all records and per task source."""
    by_source: dict[str, list[float]] = {}
    every: list[float] = []
    for record in records:
        ms = record.latency.policy_s * 1000
        every.append(ms)
        by_source.setdefault(record.task_source or "none", []).append(ms)

    def summary(values: list[float]) -> dict[str, Any]:
        p50, p99 = percentile(values, 50), percentile(values, 99)
        return {"p50": p50, "p99": p99, "records": len(values)}

    return {
        **summary(every),
        "by_task_source": {source: summary(v) for source, v in sorted(by_source.items())},
    }


def failed_requests(report: Mapping[str, Any]) -> dict[str, int]:
    """Requests the client saw fail, per ``target load``: the run's figures leave them out."""
    return {
        f"{run['target']} {run['load']}": int(run["metrics"]["failed"])
        for run in report["runs"]
        if run["metrics"].get("failed")
    }


def labelled_quality(texts: Sequence[str], expected: Sequence[Sequence[str]]) -> float:
    """Share of answers naming one of their expected answers (case-insensitive)."""
    if len(texts) != len(expected):
        raise ValueError(f"{len(texts)} answers for {len(expected)} labelled prompts")
    right = [
        any(answer.lower() in text.lower() for answer in answers)
        for text, answers in zip(texts, expected, strict=True)
    ]
    return sum(right) / len(right) if right else math.nan


def _cell(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_tables(report: Mapping[str, Any]) -> str:
    """The benchmark README's tables: side by side per target and load, then overhead, then
    quality."""
    lines = [
        "| target | load | req/s | out tok/s | mean TTFT ms | p99 TTFT ms | mean TPOT ms "
        "| p99 ITL ms | mean E2E ms | goodput req/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in report["runs"]:
        m = run["metrics"]
        lines.append(
            f"| {run['target']} | {run['load']} | {_cell(m['request_throughput'], 2)} "
            f"| {_cell(m['output_throughput'])} | {_cell(m['mean_ttft_ms'])} "
            f"| {_cell(m['p99_ttft_ms'])} | {_cell(m['mean_tpot_ms'])} | {_cell(m['p99_itl_ms'])} "
            f"| {_cell(m['mean_e2el_ms'])} | {_cell(m.get('request_goodput'), 2)} |"
        )
    lines += [
        "",
        "| load | TTFT overhead | TPOT overhead | E2E overhead | throughput kept | target "
        "| added ms: tier calls / gateway own / outside handler |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["overhead"]:
        limit = row.get("target_pct")
        verdict = "-" if limit is None else ("met" if row["met"] else f"missed (≤{limit:g} %)")
        parts = row.get("breakdown")
        split = (
            "-"
            if parts is None
            else " / ".join(
                f"{parts[k]:.0f}" for k in ("tier_calls_ms", "gateway_own_ms", "outside_handler_ms")
            )
        )
        lines.append(
            f"| {row['load']} | {_cell(row.get('mean_ttft_ms_overhead_pct'))} % "
            f"| {_cell(row.get('mean_tpot_ms_overhead_pct'))} % "
            f"| {_cell(row.get('mean_e2el_ms_overhead_pct'))} % "
            f"| {_cell(row.get('output_throughput_ratio'), 2)}x | {verdict} | {split} |"
        )
    lines += [
        "",
        "| labelled set | quality | req/s | cost/request (USD) | tier shares | escalation "
        "| upstream calls/request | mean TTFT ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["labelled"]:
        d = row["decisions"]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in d.get("tier_shares", {}).items())
        lines.append(
            f"| {row['target']} | {_cell(row['quality'], 2)} "
            f"| {_cell(row['request_throughput'], 2)} "
            f"| {d.get('cost_per_request_usd', math.nan):.2e} | {shares} "
            f"| {_cell(d.get('escalation_rate'), 2)} "
            f"| {_cell(d.get('upstream_calls_per_request'), 2)} | {_cell(row['mean_ttft_ms'])} |"
        )
    routing = report.get("routing_decision_ms")
    if routing:
        lines += [
            "",
            "| routing decision | requests | p50 ms | p99 ms |",
            "|---|---|---|---|",
            f"| all | {routing['records']} | {_cell(routing['p50'], 2)} "
            f"| {_cell(routing['p99'], 2)} |",
        ]
        for source, row in routing.get("by_task_source", {}).items():
            lines.append(
                f"| task by {source} | {row['records']} | {_cell(row['p50'], 2)} "
                f"| {_cell(row['p99'], 2)} |"
            )
    planning = report.get("planning")
    if planning:
        lines += [
            "",
            "| planning (explain) | callers | decisions/s per replica | p50 ms | p99 ms "
            "| task found by |",
            "|---|---|---|---|---|---|",
        ]
        for row in planning["runs"]:
            found = ", ".join(f"{k} {v}" for k, v in sorted(row["task_sources"].items()))
            lines.append(
                f"| {row['path']} | {row['callers']} "
                f"| {_cell(row['decisions_per_s_per_replica'])} | {_cell(row['p50_ms'], 2)} "
                f"| {_cell(row['p99_ms'], 2)} | {found} |"
            )
    return "\n".join(lines) + "\n"
