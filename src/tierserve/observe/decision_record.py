"""The decision record: one per request, what the policy decided and what each step measured.

It is the single source of the decision log and of the Prometheus metrics, so the two always
agree. How a record is priced is :mod:`tierserve.observe.pricing`; what the log keeps of it,
:mod:`tierserve.observe.privacy`. Pure data: no Ray, vLLM or HTTP here.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tierserve.observe.legacy_records import RECORD_VERSION, upgraded
from tierserve.policy.classify import TaskSource
from tierserve.policy.step import Outcome, Step, doubted_fields

__all__ = ["CacheStatus", "DecisionRecord", "StageLatency"]

CacheStatus = Literal["hit", "miss", "bypass", "off"]
"""hit/miss: the route is cacheable and the cache was consulted; bypass: the caller asked for
a fresh answer (``Cache-Control: no-cache``) or streamed; off: the route is not cacheable."""


class StageLatency(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_s: float = Field(description="Planning: eligibility, task, risk, route.")
    inference_s: float = Field(description="Engine time of every step, summed.")
    validation_s: float = Field(description="Confidence and validators of every step, summed.")
    total_s: float = Field(description="From request parsed to record written.")


class DecisionRecord(BaseModel):
    """What the decision log stores and ``tierserve log export`` writes, one JSON line each."""

    model_config = ConfigDict(frozen=True)

    record_version: int = Field(
        default=RECORD_VERSION,
        description="The record's format; older stored records are upgraded when read "
        "(DecisionRecord.stored, observe/legacy_records.py).",
    )
    request_id: str
    time: float = Field(description="Unix time the request arrived.")
    tenant: str
    route: str
    task: str
    task_source: TaskSource | None = Field(
        default=None,
        description="How the task class was found: the caller's hint, a keyword rule, the "
        "classifier, or none of them (unknown). None: no plan was made (a denied request).",
    )
    task_probability: float | None = Field(
        default=None, description="The classifier's probability, when it decided."
    )
    kind: str | None = Field(
        default=None, description="The question kind the plan gave the request, if any."
    )
    kind_probability: float | None = Field(
        default=None, description="The kind classifier's probability, when it ran."
    )
    skipped_tiers: list[str] = Field(
        default_factory=list,
        description="Tiers of the route this request did not climb (eligibility, tools, the "
        "session floor, a start router, complexity).",
    )
    risk: str
    complex_input: bool = Field(default=False, description="The risk layer judged it complex.")
    session_floor: str | None = Field(
        default=None, description="The session's floor tier the ladder was cut at, if any."
    )
    policy_version: str
    model_requested: str
    stream: bool
    output_schema: str | None = None
    plan: list[str] = Field(
        description="The plan's reason codes, rendered from the decision the typed fields "
        "above record (nothing reads them back)."
    )
    models: dict[str, str] = Field(description="Model version of each tier tried.")
    steps: list[Step]
    outcome: Outcome = Field(description="accept, human_review or safe_failure.")
    answered_by: str | None = Field(
        default=None,
        description="The tier whose answer was returned; None when none was (the outcome says "
        "why: human review, safe failure, denied).",
    )
    first_tier: str | None = Field(description="The route's first tier (for first-pass rates).")
    cheapest_tier: str = Field(description="The policy's cheapest tier (for containment).")
    confidence: float
    cache: CacheStatus
    cached_from: str | None = Field(default=None, description="Request id a cache hit reuses.")
    review_id: str | None = None
    prompt_sha256: str
    prompt: str | None = Field(description="The user text as the policy's log_prompts allows.")
    end_user_sha256: str | None = Field(
        default=None,
        description="SHA-256 of the tenant and the request's `user` field (the app's end-user "
        "id), so one end user's requests can be found without storing who they are.",
    )
    pii: list[str] = Field(default_factory=list, description="Kinds of personal data found.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency: StageLatency

    @classmethod
    def stored(cls, raw: str | bytes) -> DecisionRecord:
        """A record as the decision log or an export stored it (JSON), upgraded first when it
        was written in an older format. Records built in code are never upgraded: their plan
        facts are typed from the start."""
        return cls.model_validate(upgraded(json.loads(raw)))

    @property
    def answer_source(self) -> str:
        """The answering tier, else the outcome: how reports and metric labels name where a
        request's answer came from."""
        return self.answered_by or str(self.outcome)

    @property
    def first_pass(self) -> bool:
        """Accepted at the route's first step, without escalating (cache hits excluded)."""
        return len(self.steps) == 1 and self.steps[0].outcome is Outcome.ACCEPT

    @property
    def uncertain_fields(self) -> tuple[str, ...]:
        return doubted_fields(self.steps)

    @property
    def contained(self) -> bool:
        """Answered by the cheapest tier."""
        return self.outcome is Outcome.ACCEPT and self.answered_by == self.cheapest_tier
