"""The decision record: one per request, what the policy decided and what each step measured.

It is the single source of the decision log and of the Prometheus metrics, so the two always
agree. Pure data and pure functions: no Ray, vLLM or HTTP here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tierserve.pii import redact_pii
from tierserve.policy.gate import Outcome
from tierserve.policy.runner import StepRecord
from tierserve.policy.spec import PromptLogging
from tierserve.validate import read_code

__all__ = [
    "CacheStatus",
    "DecisionRecord",
    "StageLatency",
    "StepLog",
    "TierPrice",
    "escalation_reason",
    "logged_prompt",
    "step_log",
    "totals",
]

CacheStatus = Literal["hit", "miss", "bypass", "off"]
"""hit/miss: the route is cacheable and the cache was consulted; bypass: the caller asked for
a fresh answer (``Cache-Control: no-cache``) or streamed; off: the route is not cacheable."""


class TierPrice(BaseModel):
    """A tier's cost model (from the stack config)."""

    model_config = ConfigDict(frozen=True)

    per_million_tokens: float = 0.0
    per_gpu_second: float = 0.0

    def cost(self, tokens: int, engine_seconds: float) -> float:
        return tokens * self.per_million_tokens / 1e6 + engine_seconds * self.per_gpu_second


class StepLog(BaseModel):
    """One ladder step: its contract, the signals and verdict, and what it cost."""

    model_config = ConfigDict(frozen=True)

    tier: str | None = Field(description="None for a terminal action (human_review, ...).")
    model: str | None = None
    outcome: str = Field(description="accept, escalate, human_review or safe_failure.")
    reason: str = Field(description="The reason code, e.g. 'conf=0.19<0.40 => escalate medium'.")
    escalation_reason: str | None = Field(
        default=None,
        description="Why the step was not accepted, as a metric label: low_confidence, "
        "validator_<name>, timeout or error.",
    )
    constrained: bool = False
    max_tokens: int | None = None
    validators: list[str] = Field(default_factory=list)
    extra_context: bool = False
    threshold: float | None = None
    confidence: float | None = None
    signals: dict[str, float] = Field(
        default_factory=dict,
        description="Confidence features of the answer (conf_q0, conf_q10, mean_logprob, ...).",
    )
    validations: list[str] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    latency_s: float = 0.0
    validation_s: float = 0.0
    cost_usd: float = 0.0
    error: str | None = None


class StageLatency(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_s: float = Field(description="Planning: eligibility, task, risk, route.")
    inference_s: float = Field(description="Engine time of every step, summed.")
    validation_s: float = Field(description="Confidence and validators of every step, summed.")
    total_s: float = Field(description="From request parsed to record written.")


class DecisionRecord(BaseModel):
    """What the decision log stores and ``tierserve log export`` writes, one JSON line each."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    time: float = Field(description="Unix time the request arrived.")
    tenant: str
    route: str
    task: str
    risk: str
    complex_input: bool = Field(default=False, description="The risk layer judged it complex.")
    policy_version: str
    model_requested: str
    stream: bool
    output_schema: str | None = None
    plan: list[str] = Field(description="The plan's reason codes.")
    models: dict[str, str] = Field(description="Model version of each tier tried.")
    steps: list[StepLog]
    outcome: str = Field(description="accept, human_review or safe_failure.")
    answered_by: str = Field(description="The answering tier, or the outcome.")
    first_tier: str | None = Field(description="The route's first tier (for first-pass rates).")
    cheapest_tier: str = Field(description="The policy's cheapest tier (for containment).")
    confidence: float
    cache: CacheStatus
    cached_from: str | None = Field(default=None, description="Request id a cache hit reuses.")
    review_id: str | None = None
    prompt_sha256: str
    prompt: str | None = Field(description="The user text as the policy's log_prompts allows.")
    pii: list[str] = Field(default_factory=list, description="Kinds of personal data found.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency: StageLatency

    @property
    def first_pass(self) -> bool:
        """Accepted at the route's first step, without escalating (cache hits excluded)."""
        return bool(self.steps) and self.steps[0].outcome == "accept" and len(self.steps) == 1

    @property
    def contained(self) -> bool:
        """Answered by the cheapest tier."""
        return self.outcome == "accept" and self.answered_by == self.cheapest_tier


def escalation_reason(step: StepRecord) -> str | None:
    """A step's reason as a bounded metric label; None when the step was accepted."""
    if step.outcome is Outcome.ACCEPT or step.tier is None:
        return None
    if step.error is not None:
        return "timeout" if step.reason.startswith("timeout") else "error"
    failed = [name for name, passed in map(read_code, step.validations) if not passed]
    return f"validator_{failed[0]}" if failed else "low_confidence"


def step_log(step: StepRecord, prices: Mapping[str, TierPrice]) -> StepLog:
    price = prices.get(step.tier or "", TierPrice())
    return StepLog(
        tier=step.tier,
        model=step.model,
        outcome=str(step.outcome),
        reason=step.reason,
        escalation_reason=escalation_reason(step),
        constrained=step.constrained,
        max_tokens=step.max_tokens,
        validators=list(step.validators),
        extra_context=step.extra_context,
        threshold=step.threshold,
        confidence=step.confidence,
        signals=dict(step.signals),
        validations=list(step.validations),
        prompt_tokens=step.prompt_tokens,
        completion_tokens=step.completion_tokens,
        ttft_s=step.ttft_s,
        latency_s=step.latency_s,
        validation_s=step.validation_s,
        cost_usd=price.cost(step.prompt_tokens + step.completion_tokens, step.latency_s),
        error=step.error,
    )


def logged_prompt(text: str, mode: PromptLogging) -> tuple[str, str | None]:
    """(SHA-256 of the text, the text as ``mode`` allows it in the log)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if mode == "full":
        return digest, text
    if mode == "redact":
        return digest, redact_pii(text)
    return digest, None


def totals(steps: Sequence[StepLog]) -> tuple[int, int, float]:
    """(prompt tokens, completion tokens, cost) over ``steps``."""
    return (
        sum(s.prompt_tokens for s in steps),
        sum(s.completion_tokens for s in steps),
        sum(s.cost_usd for s in steps),
    )
