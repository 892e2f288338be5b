"""The response cache around the ladder: a request's key, its lookup and what is stored of an
accepted answer (the cache itself, TTL and size bound, is :mod:`tierserve.cache`)."""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.api.protocol import ChatCompletionRequest
from tierserve.api.trace import RequestTrace
from tierserve.cache import CachedAnswer, ResponseCache, cache_key
from tierserve.observe.decision_record import CacheStatus, DecisionRecord
from tierserve.policy.runner import LadderResult
from tierserve.policy.step import Outcome

__all__ = ["CacheLookup", "cached_answer", "look_up", "store"]


def cached_answer(result: LadderResult, record: DecisionRecord) -> CachedAnswer | None:
    """What the cache keeps of an accepted answer (nothing of any other outcome)."""
    if result.outcome is not Outcome.ACCEPT or result.generation is None:
        return None
    return CachedAnswer(
        text=result.text,
        finish_reason=result.finish_reason,
        tier=result.generation.tier,
        request_id=record.request_id,
        confidence=result.confidence,
        models=record.models,
    )


@dataclass(frozen=True, slots=True)
class CacheLookup:
    status: CacheStatus
    key: str | None = None
    answer: CachedAnswer | None = None


def _no_cache(cache_control: str | None) -> bool:
    directives = {d.strip().lower() for d in (cache_control or "").split(",")}
    return bool(directives & {"no-cache", "no-store"})


def look_up(
    cache: ResponseCache | None,
    trace: RequestTrace,
    request: ChatCompletionRequest,
    cache_control: str | None,
    scope: str | None,
) -> CacheLookup:
    """``scope``: whose answers may be shared (see ``policy.eligibility.caller_scope``);
    an anonymous caller's (None) are neither looked up nor stored."""
    route = trace.plan.route
    if cache is None or not route.cacheable:
        return CacheLookup("off")
    fresh_only = request.logprobs or request.tools
    if trace.stream or _no_cache(cache_control) or scope is None or fresh_only:
        # Cached answers keep no log-probabilities and no tool calls: those are always fresh.
        return CacheLookup("bypass")
    key = cache_key(
        policy_version=trace.plan.policy_version,
        tenant=scope,
        route=route.name,
        tiers=[step.tier or step.action for step in trace.ladder.steps],
        schema=trace.ladder.schema_name,
        model=request.model,
        messages=[(m.role, m.text()) for m in request.messages],
        sampling={
            **request.model_dump(
                include={
                    "max_tokens",
                    "max_completion_tokens",
                    "temperature",
                    "top_p",
                    "stop",
                    "seed",
                    "ignore_eos",
                    "response_format",
                    "frequency_penalty",
                    "presence_penalty",
                    "logit_bias",
                    "top_k",
                    "min_p",
                    "repetition_penalty",
                    "min_tokens",
                }
            ),
            "decoding": (request.metadata or {}).get("decoding"),
        },
    )
    answer = cache.get(key)
    return CacheLookup("hit" if answer else "miss", key, answer)


def store(cache: ResponseCache | None, lookup: CacheLookup, answer: CachedAnswer | None) -> None:
    if (
        cache is not None
        and answer is not None
        and lookup.status == "miss"
        and lookup.key is not None
    ):
        cache.put(lookup.key, answer)
