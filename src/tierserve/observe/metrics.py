"""Every Prometheus metric tierserve exports, defined here and nowhere else.

Names follow ``tierserve_<noun>_<unit>``, counters end in ``_total``. All request metrics are
derived from the :class:`~tierserve.observe.decision_record.DecisionRecord` written to the decision
log, so the scrape and the log cannot disagree.

Several gateway replicas: prometheus-client's multiprocess mode. Each replica process writes
its samples to memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (set on the gateway's Ray
runtime environment before the process starts, see :mod:`tierserve.serve.app`), and
``GET /metrics`` on any replica sums the files of every replica on the node. Exact counts and
exact histogram buckets, the names as written, no export delay: Ray's own metrics export (the
alternative) renames metrics to ``ray_<name>`` and, in Ray 2.60's OpenTelemetry path,
re-buckets histograms by bucket midpoints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from tierserve.observe.decision_record import DecisionRecord
from tierserve.policy.breaker import CircuitState

__all__ = [
    "CACHE_LOOKUPS",
    "CONTAINED_REQUESTS",
    "COST",
    "DECISION_LOG_WRITE_LATENCY",
    "ESCALATIONS",
    "FIRST_PASS_SUCCESSES",
    "HUMAN_REVIEWS",
    "MARKED_ANSWERS",
    "MARKED_FIELDS",
    "METRIC_NAMES",
    "METRIC_WRITE_FAILURES",
    "REQUESTS",
    "REQUEST_COST",
    "REQUEST_ERRORS",
    "REQUEST_LATENCY",
    "SAFE_FAILURES",
    "STAGE_LATENCY",
    "TIER_CALIBRATED",
    "TIER_CIRCUIT_STATE",
    "TOKENS",
    "UPSTREAM_CALLS",
    "VALIDATOR_FAILURES",
    "TierserveMetrics",
    "scrape",
]

REQUESTS = "tierserve_requests_total"
FIRST_PASS_SUCCESSES = "tierserve_first_pass_successes_total"
CONTAINED_REQUESTS = "tierserve_contained_requests_total"
ESCALATIONS = "tierserve_escalations_total"
UPSTREAM_CALLS = "tierserve_upstream_calls_total"
VALIDATOR_FAILURES = "tierserve_validator_failures_total"
HUMAN_REVIEWS = "tierserve_human_reviews_total"
SAFE_FAILURES = "tierserve_safe_failures_total"
REQUEST_ERRORS = "tierserve_request_errors_total"
STAGE_LATENCY = "tierserve_stage_latency_seconds"
REQUEST_LATENCY = "tierserve_request_latency_seconds"
TOKENS = "tierserve_tokens_total"
COST = "tierserve_cost_usd_total"
REQUEST_COST = "tierserve_request_cost_usd"
CACHE_LOOKUPS = "tierserve_cache_lookups_total"
DECISION_LOG_WRITE_LATENCY = "tierserve_decision_log_write_seconds"
MARKED_ANSWERS = "tierserve_marked_answers_total"
MARKED_FIELDS = "tierserve_marked_fields_total"
TIER_CALIBRATED = "tierserve_tier_calibrated"
METRIC_WRITE_FAILURES = "tierserve_metric_write_failures_total"
TIER_CIRCUIT_STATE = "tierserve_tier_circuit_state"
POLICY_VERSION = "tierserve_policy_version"
POLICY_APPLY_FAILURES = "tierserve_policy_apply_failures_total"

METRIC_NAMES = (
    REQUESTS,
    FIRST_PASS_SUCCESSES,
    CONTAINED_REQUESTS,
    ESCALATIONS,
    UPSTREAM_CALLS,
    VALIDATOR_FAILURES,
    HUMAN_REVIEWS,
    SAFE_FAILURES,
    REQUEST_ERRORS,
    STAGE_LATENCY,
    REQUEST_LATENCY,
    TOKENS,
    COST,
    REQUEST_COST,
    CACHE_LOOKUPS,
    DECISION_LOG_WRITE_LATENCY,
    MARKED_ANSWERS,
    MARKED_FIELDS,
    TIER_CALIBRATED,
    TIER_CIRCUIT_STATE,
    POLICY_VERSION,
    POLICY_APPLY_FAILURES,
    METRIC_WRITE_FAILURES,
)

_log = logging.getLogger("ray.serve")

_CIRCUIT_VALUES: dict[CircuitState, int] = {"closed": 0, "half_open": 1, "open": 2}

# CPU tiers take tens of seconds, GPU tiers tens of milliseconds: one scale covers both.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
_COST_BUCKETS = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


class _WriteFailures(Collector):
    """Metric updates that failed in this process. Kept in memory, not in the multiprocess
    directory: that directory failing is what it counts."""

    def __init__(self) -> None:
        self.count = 0

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            METRIC_WRITE_FAILURES.removesuffix("_total"),
            "Metric updates that failed (logged; the request went on), in the process that "
            "answered this scrape.",
            value=self.count,
        )


WRITE_FAILURES = _WriteFailures()


@contextmanager
def _never_failing(what: str) -> Iterator[None]:
    """A metric that cannot be written is logged and counted; the request goes on (its
    decision record, written before, is the durable account)."""
    try:
        yield
    except Exception as error:
        WRITE_FAILURES.count += 1
        count = WRITE_FAILURES.count
        if count == 1 or count % 1000 == 0:  # a lost directory fails every request: no flood
            _log.warning(
                "metrics: %s not recorded (%s: %s); %d metric updates failed so far",
                what,
                type(error).__name__,
                error,
                count,
            )


def _counter(name: str, doc: str, labels: Iterable[str], registry: CollectorRegistry) -> Counter:
    # prometheus-client appends _total itself; the constants carry it so they read as scraped.
    return Counter(name.removesuffix("_total"), doc, list(labels), registry=registry)


class TierserveMetrics:
    """The metric objects of one process, and how a decision record updates them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = _counter(
            REQUESTS,
            "Requests answered, by route, answering tier (or outcome), outcome and cache status.",
            ("route", "tier", "outcome", "cache"),
            registry,
        )
        self.first_pass_successes = _counter(
            FIRST_PASS_SUCCESSES,
            "Requests accepted at their route's first step.",
            ("route",),
            registry,
        )
        self.contained_requests = _counter(
            CONTAINED_REQUESTS,
            "Requests answered by the cheapest tier (containment).",
            ("route",),
            registry,
        )
        self.escalations = _counter(
            ESCALATIONS,
            "Steps not accepted, by route, tier, where the request went next and why.",
            ("route", "from_tier", "to_tier", "reason"),
            registry,
        )
        self.upstream_calls = _counter(
            UPSTREAM_CALLS,
            "Tier calls, by route, tier and why the call was made: first (the route's first "
            "step), escalation, or second_opinion (an agreement gate comparing doubted fields). "
            "Amplification is this over tierserve_requests_total.",
            ("route", "tier", "call"),
            registry,
        )
        self.validator_failures = _counter(
            VALIDATOR_FAILURES, "Failed validator runs.", ("validator", "tier"), registry
        )
        self.human_reviews = _counter(
            HUMAN_REVIEWS, "Requests sent to human review.", ("route",), registry
        )
        self.safe_failures = _counter(
            SAFE_FAILURES, "Requests answered with the safe failure.", ("route",), registry
        )
        self.request_errors = _counter(
            REQUEST_ERRORS,
            "Requests refused or failed with an HTTP error, by error type and status.",
            ("error_type", "status"),
            registry,
        )
        self.stage_latency = Histogram(
            STAGE_LATENCY,
            "Latency by stage: policy and total per request; inference and validation per step.",
            ["stage", "tier"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_latency = Histogram(
            REQUEST_LATENCY,
            "End-to-end request latency by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.tokens = _counter(
            TOKENS, "Tokens by tier, prompt or completion.", ("tier", "kind"), registry
        )
        self.cost = _counter(COST, "Cost of the steps run on each tier, USD.", ("tier",), registry)
        self.request_cost = Histogram(
            REQUEST_COST,
            "Cost of one request over every step it ran, USD.",
            ["route"],
            buckets=_COST_BUCKETS,
            registry=registry,
        )
        self.cache_lookups = _counter(
            CACHE_LOOKUPS,
            "Response-cache lookups by route and result.",
            ("route", "result"),
            registry,
        )
        self.decision_log_write_latency = Histogram(
            DECISION_LOG_WRITE_LATENCY,
            "Time to commit one decision record to disk.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )

        self.marked_answers = _counter(
            MARKED_ANSWERS,
            "Answers returned (or drafted for review) with fields marked uncertain, by route "
            "and outcome: the price of safety an app shows its users.",
            ("route", "outcome"),
            registry,
        )
        self.marked_fields = _counter(
            MARKED_FIELDS,
            "Fields marked uncertain in answers returned or drafted, by route.",
            ("route",),
            registry,
        )
        self.tier_calibrated = Gauge(
            TIER_CALIBRATED,
            "1 when the tier serves the model version the policy's thresholds were calibrated "
            "on, 0 when it serves another (the thresholds may not hold).",
            ("tier", "served", "calibrated_on"),
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.tier_circuit_state = Gauge(
            TIER_CIRCUIT_STATE,
            "Each tier's circuit breaker in each gateway replica (pid): 0 closed, 1 half-open "
            "(one request probes the tier), 2 open (the tier is skipped).",
            ("tier",),
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.policy_version = Gauge(
            POLICY_VERSION,
            "1 for the policy version each gateway replica (pid) decides by, 0 for versions it "
            "decided by before: during a rollout two versions show 1, after it one.",
            ("version",),
            registry=registry,
            multiprocess_mode="liveall",
        )
        self.policy_apply_failures = _counter(
            POLICY_APPLY_FAILURES,
            "Policy versions a running gateway replica could not load, by the version it was "
            "given ('unreadable' when none could be read); it kept its last good one.",
            ("version",),
            registry,
        )
        registry.register(WRITE_FAILURES)

    def observe_calibration(self, tier: str, served: str, calibrated_on: str | None) -> None:
        """A tier's served model version against the policy's calibration (none recorded:
        not exported)."""
        if calibrated_on is not None:
            with _never_failing("tier calibration"):
                self.tier_calibrated.labels(tier, served, calibrated_on).set(
                    served == calibrated_on
                )

    def observe_circuit(self, tier: str, state: CircuitState) -> None:
        with _never_failing("circuit state"):
            self.tier_circuit_state.labels(tier).set(_CIRCUIT_VALUES[state])

    def observe_policy(self, version: str, previous: str | None = None) -> None:
        with _never_failing("policy version"):
            if previous is not None:  # multiprocess mode cannot remove a series
                self.policy_version.labels(previous).set(0)
            self.policy_version.labels(version).set(1)

    def count_policy_failure(self, version: str) -> None:
        with _never_failing("policy apply failure"):
            self.policy_apply_failures.labels(version).inc()

    def count_error(self, error_type: str, status: int) -> None:
        with _never_failing("request error"):
            self.request_errors.labels(error_type, str(status)).inc()

    def observe_log_write(self, seconds: float) -> None:
        with _never_failing("decision log write latency"):
            self.decision_log_write_latency.observe(seconds)

    def observe(self, record: DecisionRecord) -> None:
        with _never_failing(f"the record of {record.request_id}"):
            self._observe(record)

    def _observe(self, record: DecisionRecord) -> None:
        route = record.route
        marked = record.uncertain_fields
        if marked and record.outcome in ("accept", "human_review"):
            self.marked_answers.labels(route, record.outcome).inc()
            self.marked_fields.labels(route).inc(len(marked))
        self.requests.labels(route, record.answer_source, record.outcome, record.cache).inc()
        self.request_latency.labels(route).observe(record.latency.total_s)
        self.stage_latency.labels("policy", "").observe(record.latency.policy_s)
        self.stage_latency.labels("total", "").observe(record.latency.total_s)
        if record.cache in ("hit", "miss"):
            self.cache_lookups.labels(route, record.cache).inc()
        if record.first_pass:
            self.first_pass_successes.labels(route).inc()
        if record.contained:
            self.contained_requests.labels(route).inc()
        if record.outcome == "human_review":
            self.human_reviews.labels(route).inc()
        elif record.outcome == "safe_failure":
            self.safe_failures.labels(route).inc()
        self.request_cost.labels(route).observe(record.cost_usd)
        for index, step in enumerate(record.steps):
            if step.tier is None:
                continue
            call = "second_opinion" if step.second_opinion else "escalation" if index else "first"
            self.upstream_calls.labels(route, step.tier, call).inc()
            self.stage_latency.labels("inference", step.tier).observe(step.latency_s)
            self.stage_latency.labels("validation", step.tier).observe(step.validation_s)
            self.tokens.labels(step.tier, "prompt").inc(step.prompt_tokens)
            self.tokens.labels(step.tier, "completion").inc(step.completion_tokens)
            self.cost.labels(step.tier).inc(step.cost_usd)
            for validation in step.validations:
                if not validation.passed:
                    self.validator_failures.labels(validation.name, step.tier).inc()
            if step.escalation_reason is not None:
                following = record.steps[index + 1] if index + 1 < len(record.steps) else None
                to_tier = str(following.tier or following.outcome if following else record.outcome)
                self.escalations.labels(route, step.tier, to_tier, step.escalation_reason).inc()


def scrape() -> bytes:
    """The exposition text: of every process writing to the multiprocess directory when one is
    set (the gateway replicas), else of this process."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    if os.path.isdir(directory):  # gone: there is nothing to read but the failures
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(WRITE_FAILURES)
    return generate_latest(registry)
