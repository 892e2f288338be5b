"""A request's trace, and what is built from it: its decision record (the plan's typed facts
beside its rendered reason codes), the record of a refused request, its review item."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tierserve.api.protocol import tierserve_headers
from tierserve.cache import CachedAnswer
from tierserve.engine.types import ChatMessage
from tierserve.observe.decision_record import CacheStatus, DecisionRecord, StageLatency
from tierserve.observe.pricing import TierPrice, priced, totals
from tierserve.observe.privacy import end_user_digest, kept_steps, logged_prompt
from tierserve.policy.ladder import Ladder
from tierserve.policy.plan import RoutePlan
from tierserve.policy.reason import Disclosure
from tierserve.policy.runner import AnswerStarted, LadderResult
from tierserve.policy.spec import Policy, PromptLogging
from tierserve.policy.step import Outcome, Step, doubted_fields

__all__ = ["RequestTrace", "denied_record", "plan_facts", "review_item"]


@dataclass(frozen=True, slots=True)
class RequestTrace:
    """What the service knows about a request before and around its ladder."""

    request_id: str
    arrived: float
    """Unix time."""
    started: float
    """Monotonic time the request was parsed."""
    policy_s: float
    plan: RoutePlan
    ladder: Ladder
    model: str
    stream: bool
    user_text: str
    end_user: str | None = None
    """The request's ``user`` field (the app's end-user id), recorded hashed."""

    def record(
        self,
        policy: Policy,
        prices: Mapping[str, TierPrice],
        *,
        steps: Sequence[Step],
        outcome: Outcome,
        answered_by: str | None,
        confidence: float,
        cache: CacheStatus,
        cached_from: str | None = None,
        review_id: str | None = None,
        models: Mapping[str, str] | None = None,
    ) -> DecisionRecord:
        """``models``: the tiers' model versions when no step ran (a cache hit's)."""
        logs = [priced(step, prices) for step in steps]
        prompt_tokens, completion_tokens, cost = totals(logs)
        digest, prompt = logged_prompt(self.user_text, policy.log_prompts)
        first = self.ladder.steps[0]
        return DecisionRecord(
            request_id=self.request_id,
            time=self.arrived,
            tenant=self.plan.eligibility.tenant.id,
            **plan_facts(self.plan),
            policy_version=self.plan.policy_version,
            model_requested=self.model,
            stream=self.stream,
            output_schema=self.ladder.schema_name,
            plan=list(self.plan.reasons),
            models=dict(models or {s.tier: s.model for s in steps if s.tier and s.model}),
            steps=logs,
            outcome=outcome,
            answered_by=answered_by,
            first_tier=first.tier if first.action == "generate" else None,
            cheapest_tier=policy.tiers[0],
            confidence=confidence,
            cache=cache,
            cached_from=cached_from,
            review_id=review_id,
            prompt_sha256=digest,
            prompt=prompt,
            end_user_sha256=end_user_digest(self.plan.eligibility.tenant.id, self.end_user),
            pii=list(self.plan.eligibility.pii),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            latency=StageLatency(
                policy_s=self.policy_s,
                inference_s=sum(s.latency_s for s in steps),
                validation_s=sum(s.validation_s for s in steps),
                total_s=time.monotonic() - self.started,
            ),
        )

    def cache_hit(self, policy: Policy, cached: CachedAnswer) -> DecisionRecord:
        """The record of a request answered from the cache: no step ran."""
        return self.record(
            policy,
            {},
            steps=(),
            outcome=Outcome.ACCEPT,
            answered_by=cached.tier,
            confidence=cached.confidence,
            cache="hit",
            cached_from=cached.request_id,
            models=cached.models,
        )

    def stream_headers(self, started: AnswerStarted, disclosure: Disclosure) -> dict[str, str]:
        """A stream's headers, sent once the answering tier (or the terminal outcome) is
        known; ``disclosure``: how they show the steps' failed checks."""
        tried = [s.tier for s in started.steps_before if s.tier]
        if started.answered_by is not None:
            tried.append(started.answered_by)
        return tierserve_headers(
            request_id=self.request_id,
            policy_version=self.plan.policy_version,
            route=self.plan.route.name,
            tier=started.answered_by,
            tiers_tried=tried,
            reasons=[step.disclosed(disclosure) for step in started.steps_before],
            outcome=started.outcome,
        )

    def explanation(self) -> dict[str, Any]:
        """The plan and the composed ladder, as ``POST /v1/route/explain`` returns them."""
        plan = self.plan
        return {
            "policy_version": plan.policy_version,
            "tenant": plan.eligibility.tenant.id,
            "pii": list(plan.eligibility.pii),
            "allowed_tiers": list(plan.eligibility.allowed_tiers),
            "task": {
                "class": str(plan.task.task),
                "source": plan.task.source,
                "probability": plan.task.probability,
            },
            "risk": {
                "level": str(plan.risk.risk),
                "complex": plan.risk.complex,
                "factors": list(plan.risk.factors),
            },
            "kind": (
                None
                if plan.kind is None
                else {"kind": plan.kind.kind, "probability": plan.kind.probability}
            ),
            "skipped_tiers": list(plan.skipped_tiers),
            "route": plan.route.name,
            "schema": self.ladder.schema_name,
            "steps": [step.model_dump(exclude_defaults=True) for step in self.ladder.steps],
            "on_exhausted": self.ladder.on_exhausted,
            "reasons": list(plan.reasons),
            "summary": plan.summary,
        }


def plan_facts(plan: RoutePlan) -> dict[str, Any]:
    """The decision record's fields that say what the plan decided, typed."""
    return {
        "route": plan.route.name,
        "task": str(plan.task.task),
        "task_source": plan.task.source,
        "task_probability": plan.task.probability,
        "kind": plan.kind.kind if plan.kind else None,
        "kind_probability": plan.kind.probability if plan.kind else None,
        "skipped_tiers": list(plan.skipped_tiers),
        "risk": str(plan.risk.risk),
        "complex_input": plan.risk.complex,
        "session_floor": plan.session_floor,
    }


def denied_record(
    policy: Policy,
    *,
    request_id: str,
    arrived: float,
    started: float,
    tenant: str,
    model: str,
    stream: bool,
    user_text: str,
    denial: str,
    plan: RoutePlan | None = None,
    end_user: str | None = None,
) -> DecisionRecord:
    """The record of a request refused before any tier ran (403, 429): who asked, why it was
    refused (``denial``, a reason code), and the plan when one was made."""
    digest, prompt = logged_prompt(user_text, policy.log_prompts)
    seconds = time.monotonic() - started
    return DecisionRecord(
        request_id=request_id,
        time=arrived,
        tenant=tenant,
        **(plan_facts(plan) if plan else {"route": "-", "task": "-", "risk": "-"}),
        policy_version=policy.version,
        model_requested=model,
        stream=stream,
        plan=[*(plan.reasons if plan else ()), denial],
        models={},
        steps=[],
        outcome=Outcome.DENIED,
        answered_by=None,
        first_tier=None,
        cheapest_tier=policy.tiers[0],
        confidence=0.0,
        cache="off",
        prompt_sha256=digest,
        prompt=prompt,
        end_user_sha256=end_user_digest(tenant, end_user),
        pii=list(plan.eligibility.pii) if plan else [],
        latency=StageLatency(policy_s=seconds, inference_s=0.0, validation_s=0.0, total_s=seconds),
    )


def review_item(
    trace: RequestTrace,
    result: LadderResult,
    messages: Sequence[ChatMessage],
    log_prompts: PromptLogging,
) -> dict[str, Any]:
    """What a person reviewing the request sees: who asked, why it came to them, the
    conversation and the draft answer, if a tier produced one, kept as the policy keeps
    prompts in the decision log (personal data redacted by default; with 'hash' or 'omit' the
    texts are left out and the request id leads to the caller)."""
    draft = result.generation
    steps = kept_steps(result.steps, log_prompts, trace.ladder.callers_schema)

    def kept(text: str | None) -> str | None:
        return None if text is None else logged_prompt(text, log_prompts)[1]

    return {
        "request_id": trace.request_id,
        "tenant": trace.plan.eligibility.tenant.id,
        "route": trace.plan.route.name,
        "policy_version": trace.plan.policy_version,
        "reasons": [*trace.plan.reasons, *(s.reason for s in steps)],
        "messages": [{"role": m.role, "content": kept(m.content)} for m in messages],
        "prompts_kept": log_prompts,
        "draft": None if draft is None else kept(draft.text),
        "draft_tier": None if draft is None else draft.tier,
        "uncertain_fields": list(doubted_fields(steps)),
    }
