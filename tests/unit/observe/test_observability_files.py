"""The Grafana dashboard and the Prometheus rules parse, and read only metrics that exist."""

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from tierserve.observe.metrics import METRIC_NAMES

DEPLOY = Path(__file__).resolve().parents[3] / "deploy/observability"
_METRIC = re.compile(r"\btierserve_[a-z_]+")


def exported_series() -> set[str]:
    """Every series name /metrics can show: counters as named, gauges as named, histograms'
    _bucket/_sum/_count; read from the metric objects themselves."""
    from prometheus_client import CollectorRegistry

    from tierserve.observe.metrics import TierserveMetrics

    registry = CollectorRegistry()
    TierserveMetrics(registry)
    series = set()
    for family in registry.collect():
        if family.type == "counter":
            series.add(f"{family.name}_total")
        elif family.type == "histogram":
            series |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count")}
        else:
            series.add(family.name)
    assert {name.removesuffix("_total") for name in METRIC_NAMES} <= {
        name.removesuffix("_total").removesuffix("_bucket") for name in series
    }
    return series


def dashboard_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.mark.parametrize("query", dashboard_queries() + rule_queries())
def test_query_parses_and_reads_only_exported_metrics(query: str) -> None:
    promql_parser.parse(query.replace("$__rate_interval", "5m"))
    used = set(_METRIC.findall(query))
    assert used, "every query reads a tierserve metric"
    assert used <= exported_series(), used - exported_series()


def test_the_dashboard_covers_what_operators_watch() -> None:
    text = " ".join(dashboard_queries())
    for metric in (
        "tierserve_requests_total",
        "tierserve_escalations_total",
        "tierserve_stage_latency_seconds_bucket",
        "tierserve_request_cost_usd_sum",
        "tierserve_contained_requests_total",
    ):
        assert metric in text


def test_rules_cover_each_drift_signal() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus-rules.yaml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "TierserveRouteDistributionShift",
        "TierserveEscalationRateJump",
        "TierserveValidatorFailureSpike",
        "TierserveTopTierShareRisingWithoutQualityGain",
    } <= alerts
