"""Metrics derived from decision records; the record's derived fields; the response cache."""

from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.unit.observe.test_decision_log import record
from tierserve.cache import CachedAnswer, ResponseCache, cache_key
from tierserve.observe import metrics as names
from tierserve.observe.metrics import METRIC_NAMES, TierserveMetrics
from tierserve.observe.record import StepLog, escalation_reason
from tierserve.policy.gate import Outcome
from tierserve.policy.runner import StepRecord

ROOT = Path(__file__).resolve().parents[3]


def escalated_twice() -> object:
    return record("r").model_copy(
        update={
            "steps": [
                StepLog(
                    tier="small",
                    outcome="escalate",
                    reason="conf=0.10<0.40 => escalate medium",
                    escalation_reason="low_confidence",
                    prompt_tokens=10,
                    completion_tokens=5,
                    latency_s=1.5,
                    cost_usd=0.001,
                ),
                StepLog(
                    tier="medium",
                    outcome="safe_failure",
                    reason="semantic=fail(total) => safe_failure",
                    escalation_reason="validator_semantic",
                    validations=["schema=ok", "semantic=fail(total)"],
                    prompt_tokens=20,
                    completion_tokens=8,
                    latency_s=3.0,
                    cost_usd=0.004,
                ),
            ],
            "outcome": "safe_failure",
            "answered_by": "safe_failure",
            "cost_usd": 0.005,
        }
    )


def test_a_record_updates_every_counter_it_touches() -> None:
    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    metrics.observe(record("ok"))  # accepted by small at the first step
    metrics.observe(escalated_twice())  # type: ignore[arg-type]

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value(names.REQUESTS, route="faq", tier="small", outcome="accept", cache="off") == 1
    assert (
        value(names.REQUESTS, route="faq", tier="safe_failure", outcome="safe_failure", cache="off")
        == 1
    )
    assert value(names.FIRST_PASS_SUCCESSES, route="faq") == 1
    assert value(names.CONTAINED_REQUESTS, route="faq") == 1
    assert value(names.SAFE_FAILURES, route="faq") == 1
    escalation = {"route": "faq", "from_tier": "small", "to_tier": "medium"}
    assert value(names.ESCALATIONS, **escalation, reason="low_confidence") == 1
    to_end = {"route": "faq", "from_tier": "medium", "to_tier": "safe_failure"}
    assert value(names.ESCALATIONS, **to_end, reason="validator_semantic") == 1
    assert value(names.VALIDATOR_FAILURES, validator="semantic", tier="medium") == 1
    assert value(names.VALIDATOR_FAILURES, validator="schema", tier="medium") is None
    assert value(names.TOKENS, tier="medium", kind="completion") == 8
    assert value(names.COST, tier="medium") == 0.004
    assert value(names.REQUEST_COST + "_count", route="faq") == 2
    assert value(names.STAGE_LATENCY + "_sum", stage="inference", tier="medium") == 3.0
    assert value(names.REQUEST_LATENCY + "_count", route="faq") == 2


def test_metric_names_follow_the_convention_and_are_all_exported() -> None:
    registry = CollectorRegistry()
    TierserveMetrics(registry)
    exported = {metric.name for metric in registry.collect()}
    for name in METRIC_NAMES:
        assert name.startswith("tierserve_")
        assert name.removesuffix("_total") in exported


def test_escalation_reasons_are_bounded_labels() -> None:
    low = StepRecord("small", Outcome.ESCALATE, "conf=0.1<0.4 => escalate large")
    failed = StepRecord(
        "small", Outcome.ESCALATE, "x", validations=("non_empty=ok", "grounding=fail(no)")
    )
    timed_out = StepRecord("small", Outcome.ESCALATE, "timeout>5s => escalate large", error="t")
    accepted = StepRecord("small", Outcome.ACCEPT, "conf=0.9 => accept small")
    assert escalation_reason(low) == "low_confidence"
    assert escalation_reason(failed) == "validator_grounding"
    assert escalation_reason(timed_out) == "timeout"
    assert escalation_reason(accepted) is None


def key(**changes: object) -> str:
    fields: dict[str, object] = {
        "policy_version": "p1",
        "tenant": "public",
        "route": "faq",
        "tiers": ["small", "large"],
        "schema": None,
        "model": "tierserve",
        "messages": [("user", "How do I reset my password?")],
        "sampling": {"temperature": 0.0},
    }
    return cache_key(**{**fields, **changes})  # type: ignore[arg-type]


def test_cache_key_ignores_whitespace_but_not_meaning() -> None:
    assert key(messages=[("user", "  How do I reset   my\npassword? ")]) == key()
    for change in (
        {"tenant": "northbank"},
        {"policy_version": "p2"},
        {"tiers": ["large"]},
        {"messages": [("user", "How do I reset my PIN?")]},
        {"sampling": {"temperature": 0.7}},
        {"schema": "ticket"},
    ):
        assert key(**change) != key(), change


def test_cache_expires_and_is_bounded() -> None:
    now = [0.0]
    cache = ResponseCache(ttl_s=10.0, max_entries=2, clock=lambda: now[0])
    answer = CachedAnswer("a", "stop", "small", "r1", 0.9, {})
    cache.put("k1", answer)
    cache.put("k2", answer)
    cache.put("k3", answer)
    assert len(cache) == 2 and cache.get("k1") is None  # the least recent went
    now[0] = 11.0
    assert cache.get("k3") is None
