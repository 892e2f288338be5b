"""The decision record: one per request, what the policy decided and what each step measured.

It is the single source of the decision log and of the Prometheus metrics, so the two always
agree. Pure data and pure functions: no Ray, vLLM or HTTP here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierserve.config import TierConfig
from tierserve.observe.legacy_records import RECORD_VERSION, upgraded
from tierserve.pii import redact_pii
from tierserve.policy.spec import PromptLogging
from tierserve.policy.step import Outcome, Step, doubted_fields
from tierserve.validate import ValidationResult

__all__ = [
    "CacheStatus",
    "DecisionRecord",
    "StageLatency",
    "TierPrice",
    "end_user_digest",
    "kept_record",
    "kept_steps",
    "logged_prompt",
    "priced",
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

    @classmethod
    def of(cls, tier: TierConfig) -> TierPrice:
        return cls(
            per_million_tokens=tier.cost_per_million_tokens,
            per_gpu_second=tier.cost_per_gpu_second,
        )

    def cost(self, tokens: int, engine_seconds: float) -> float:
        return tokens * self.per_million_tokens / 1e6 + engine_seconds * self.per_gpu_second


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
        description="The record's format; older records are upgraded when read "
        "(observe/legacy_records.py).",
    )
    request_id: str
    time: float = Field(description="Unix time the request arrived.")
    tenant: str
    route: str
    task: str
    task_source: Literal["hint", "rule", "classifier", "fallback"] | None = Field(
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
    answered_by: str = Field(description="The answering tier, or the outcome.")
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

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: object) -> object:
        return upgraded(data)

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


def priced(step: Step, prices: Mapping[str, TierPrice]) -> Step:
    """``step`` with its cost from its tier's cost model."""
    price = prices.get(step.tier or "", TierPrice())
    tokens = step.prompt_tokens + step.completion_tokens
    return step.model_copy(update={"cost_usd": price.cost(tokens, step.latency_s)})


def end_user_digest(tenant: str, end_user: str | None) -> str | None:
    if not end_user:
        return None
    return hashlib.sha256(f"{tenant}\n{end_user}".encode()).hexdigest()


def logged_prompt(text: str, mode: PromptLogging) -> tuple[str, str | None]:
    """(SHA-256 of the text, the text as ``mode`` allows it in the log)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if mode == "full":
        return digest, text
    if mode == "redact":
        return digest, redact_pii(text)
    return digest, None


_POSITION = re.compile(r"(\[\d+\])")
_GROUP = re.compile(r"\(([^()]*)\)")


def _pseudonym(path: str) -> str:
    """``customer.name`` -> ``#1b2c3d4e.#5f6a7b8c``: each key by a digest, array positions
    kept, so the same field of two requests still compares equal."""
    out = []
    for piece in _POSITION.split(path):
        if _POSITION.fullmatch(piece):
            out.append(piece)
            continue
        keys = piece.split(".")
        out.append(
            ".".join(f"#{hashlib.sha256(k.encode()).hexdigest()[:8]}" if k else k for k in keys)
        )
    return "".join(out)


def _private_step(step: Step, callers_schema: bool) -> Step:
    names = {
        path: _pseudonym(path) if callers_schema else path
        for path in (
            *(r.path for r in step.fields),
            *step.uncertain_fields,
            *(f for v in step.validations for f in v.fields),
        )
    }
    reason = step.reason
    validations = []
    for result in step.validations:
        # A failed check's detail can quote the answer, and the answer the prompt.
        kept = ValidationResult(
            result.name,
            result.passed,
            "" if not result.passed else result.detail,
            tuple(names[f] for f in result.fields),
        )
        reason = reason.replace(result.code, kept.code)
        validations.append(kept)

    def listed(group: re.Match[str]) -> str:
        items = []
        for item in group.group(1).split(","):
            path, equals, value = item.partition("=")
            items.append(f"{names.get(path, path)}{equals}{value}")
        return f"({','.join(items)})"

    return step.model_copy(
        update={
            "reason": _GROUP.sub(listed, reason) if callers_schema else reason,
            "validations": tuple(validations),
            "fields": tuple(replace(r, path=names[r.path]) for r in step.fields),
            "uncertain_fields": tuple(names[f] for f in step.uncertain_fields),
        }
    )


def kept_steps(steps: Sequence[Step], mode: PromptLogging, callers_schema: bool) -> list[Step]:
    """``steps`` as the decision log and the review queue keep them. Where the policy keeps no
    prompt text ('hash', 'omit') they keep none of the caller's either: failed checks lose
    their detail, and the field names of a schema the caller sent are replaced by digests."""
    if mode in ("full", "redact"):
        return list(steps)
    return [_private_step(step, callers_schema) for step in steps]


def kept_record(
    record: DecisionRecord, mode: PromptLogging, callers_schema: bool
) -> DecisionRecord:
    """``record`` as the decision log keeps it (see :func:`kept_steps`); the caller's response
    is built from the record as it was."""
    if mode in ("full", "redact") or not record.steps:
        return record
    return record.model_copy(update={"steps": kept_steps(record.steps, mode, callers_schema)})


def totals(steps: Sequence[Step]) -> tuple[int, int, float]:
    """(prompt tokens, completion tokens, cost) over ``steps``."""
    return (
        sum(s.prompt_tokens for s in steps),
        sum(s.completion_tokens for s in steps),
        sum(s.cost_usd for s in steps),
    )
