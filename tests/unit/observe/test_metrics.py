"""Metrics derived from decision records; the record's derived fields; the response cache."""

from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.fakes import decision_record
from tierserve.cache import CachedAnswer, ResponseCache, cache_key
from tierserve.observe import metrics as names
from tierserve.observe.metrics import METRIC_NAMES, TierserveMetrics
from tierserve.policy.step import FailureKind, Outcome, Step
from tierserve.validate import ValidationResult

ROOT = Path(__file__).resolve().parents[3]


def escalated_twice() -> object:
    return decision_record("r").model_copy(
        update={
            "steps": [
                Step(
                    tier="small",
                    outcome=Outcome.ESCALATE,
                    reason="conf=0.10<0.40 => escalate medium",
                    failure=FailureKind.LOW_CONFIDENCE,
                    prompt_tokens=10,
                    completion_tokens=5,
                    latency_s=1.5,
                    cost_usd=0.001,
                ),
                Step(
                    tier="medium",
                    outcome=Outcome.SAFE_FAILURE,
                    reason="semantic=fail(total) => safe_failure",
                    failure=FailureKind.VALIDATOR,
                    failed_validators=("semantic",),
                    validations=(
                        ValidationResult("schema", True),
                        ValidationResult("semantic", False, "total"),
                    ),
                    prompt_tokens=20,
                    completion_tokens=8,
                    latency_s=3.0,
                    cost_usd=0.004,
                ),
            ],
            "outcome": "safe_failure",
            "answered_by": None,
            "cost_usd": 0.005,
        }
    )


def test_a_record_updates_every_counter_it_touches() -> None:
    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    metrics.observe(decision_record("ok"))  # accepted by small at the first step
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
    # Three tier calls for two requests: amplification 1.5.
    assert value(names.UPSTREAM_CALLS, route="faq", tier="small", call="first") == 2
    assert value(names.UPSTREAM_CALLS, route="faq", tier="medium", call="escalation") == 1


def test_a_second_opinion_is_counted_as_its_own_kind_of_call() -> None:
    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    escalated = escalated_twice()
    steps = list(escalated.steps)  # type: ignore[attr-defined]
    steps[1] = steps[1].model_copy(update={"second_opinion": True})
    metrics.observe(escalated.model_copy(update={"steps": steps}))  # type: ignore[attr-defined]
    labels = {"route": "faq", "tier": "medium", "call": "second_opinion"}
    assert registry.get_sample_value(names.UPSTREAM_CALLS, labels) == 1


def test_metric_names_follow_the_convention_and_are_all_exported() -> None:
    registry = CollectorRegistry()
    TierserveMetrics(registry)
    exported = {metric.name for metric in registry.collect()}
    for name in METRIC_NAMES:
        assert name.startswith("tierserve_")
        assert name.removesuffix("_total") in exported


def test_escalation_reasons_are_bounded_labels() -> None:
    def step(outcome: Outcome, failure: FailureKind | None, *failed: str) -> Step:
        return Step(
            tier="small", outcome=outcome, reason="r", failure=failure, failed_validators=failed
        )

    assert step(Outcome.ESCALATE, FailureKind.LOW_CONFIDENCE).escalation_reason == "low_confidence"
    failed = step(Outcome.ESCALATE, FailureKind.VALIDATOR, "grounding", "safety")
    assert failed.escalation_reason == "validator_grounding"
    assert step(Outcome.ESCALATE, FailureKind.TIMEOUT).escalation_reason == "timeout"
    too_long = step(Outcome.ESCALATE, FailureKind.CONTEXT_LENGTH)
    assert too_long.escalation_reason == "context_length"
    assert step(Outcome.ACCEPT, None).escalation_reason is None
    # Accepted as the route's last resort: the failure is kept, but it is no escalation.
    last_resort = step(Outcome.ACCEPT, FailureKind.LOW_CONFIDENCE)
    assert last_resort.escalation_reason is None and last_resort.failure is not None


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


def test_a_tiers_circuit_state_is_exported_as_it_changes() -> None:
    from tierserve.policy.breaker import CircuitBreakers

    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    breakers = CircuitBreakers(failures=1, cooldown_s=60, on_change=metrics.observe_circuit)
    breakers.failed("medium")
    assert registry.get_sample_value(names.TIER_CIRCUIT_STATE, {"tier": "medium"}) == 2
    breakers.succeeded("medium")
    assert registry.get_sample_value(names.TIER_CIRCUIT_STATE, {"tier": "medium"}) == 0
