"""Chat completions without HTTP: request -> policy plan -> ladder -> OpenAI-shaped reply.

The FastAPI gateway is a thin adapter over :class:`ChatService`; this module is what unit
tests drive with scripted engines.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from tierserve.api.protocol import (
    ChatCompletionRequest,
    StepMetadata,
    TierserveMetadata,
    error_body,
)
from tierserve.api.recording import Recorder, RequestTrace, look_up, store
from tierserve.api.schema_choice import (
    SchemaChoice,
    decoding_override,
    requested_schema,
    route_schema,
)
from tierserve.cache import CachedAnswer, ResponseCache
from tierserve.config import StackConfig
from tierserve.engine.types import ChatMessage, Engine, GenerationRequest
from tierserve.errors import InvalidRequestError, PermissionDeniedError, TierserveError
from tierserve.observe.record import CacheStatus, DecisionRecord, StepLog, TierPrice
from tierserve.policy.classify import TaskPredictor
from tierserve.policy.defaults import cascade_policy
from tierserve.policy.gate import Outcome
from tierserve.policy.plan import RequestFeatures, RoutePlan, plan_route
from tierserve.policy.runner import (
    AnswerStarted,
    Ladder,
    LadderFinished,
    LadderResult,
    LadderRunner,
    TerminalMessages,
    TextDelta,
)
from tierserve.policy.spec import LadderStepSpec, Policy
from tierserve.review import ReviewQueue
from tierserve.validate import ValidationContext

__all__ = ["CallerContext", "ChatService", "StreamingReply"]

_SESSIONS_KEPT = 10_000


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def _user_text(request: ChatCompletionRequest) -> str:
    return "\n".join(m.text() for m in request.messages if m.role == "user")


def _step_metadata(step: StepLog) -> StepMetadata:
    return StepMetadata(
        tier=step.tier,
        model=step.model,
        outcome=step.outcome,
        reason=step.reason,
        confidence=None if step.confidence is None else round(step.confidence, 4),
        threshold=step.threshold,
        signals=step.signals,
        validations=list(step.validations),
        constrained=step.constrained,
        max_tokens=step.max_tokens,
        prompt_tokens=step.prompt_tokens,
        completion_tokens=step.completion_tokens,
        ttft_ms=_ms(step.ttft_s),
        latency_ms=_ms(step.latency_s) or 0.0,
        cost_usd=step.cost_usd,
        error=step.error,
    )


@dataclass(frozen=True, slots=True)
class CallerContext:
    """What the HTTP layer knows about the caller beyond the body."""

    api_key: str | None = None
    task_hint: str | None = None
    session_id: str | None = None
    schema_hint: str | None = None
    """A registered schema's name (the ``x-tierserve-schema`` header)."""
    cache_control: str | None = None
    """The ``Cache-Control`` header: ``no-cache`` asks for a fresh answer."""


@dataclass(frozen=True, slots=True)
class StreamingReply:
    headers: dict[str, str]
    body: AsyncIterator[str]


@dataclass(frozen=True, slots=True)
class _Prepared:
    trace: RequestTrace
    generation_request: GenerationRequest
    session_id: str | None

    @property
    def request_id(self) -> str:
        return self.trace.request_id

    @property
    def plan(self) -> RoutePlan:
        return self.trace.plan

    @property
    def ladder(self) -> Ladder:
        return self.trace.ladder


class ChatService:
    def __init__(
        self,
        config: StackConfig,
        engines: Mapping[str, Engine],
        *,
        policy: Policy | None = None,
        predictor: TaskPredictor | None = None,
        review_queue: ReviewQueue | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self._config = config
        self._policy = policy or cascade_policy(
            [(t.name, t.confidence_threshold) for t in config.tiers]
        )
        self._predictor = predictor
        self._review_queue = review_queue
        self._runner = LadderRunner(
            engines,
            confidence_quantile=config.cascade.confidence_quantile,
            tier_timeout_s=config.cascade.tier_timeout_s,
            messages=TerminalMessages(
                human_review=self._policy.human_review_message,
                safe_failure=self._policy.safe_failure_message,
            ),
        )
        self._session_floor: OrderedDict[str, str] = OrderedDict()
        self._recorder = recorder
        cache = self._policy.cache
        self._cache = (
            ResponseCache(ttl_s=cache.ttl_s, max_entries=cache.max_entries)
            if cache.enabled
            else None
        )
        self._prices = {
            tier.name: TierPrice(
                per_million_tokens=tier.cost_per_million_tokens,
                per_gpu_second=tier.cost_per_gpu_second,
            )
            for tier in config.tiers
        }

    @property
    def model_names(self) -> list[str]:
        name = self._config.gateway.model_name
        return [name, *(f"{name}/{tier.name}" for tier in self._config.tiers)]

    # -- planning ---------------------------------------------------------------------------

    def _pinned_tier(self, model: str) -> str | None:
        name = self._config.gateway.model_name
        if model == name:
            return None
        if model in self.model_names:
            return model.removeprefix(f"{name}/")
        raise InvalidRequestError(
            f"model {model!r} is not served here",
            hint=f"use one of {self.model_names} (GET /v1/models lists them)",
            param="model",
        )

    def _plan(
        self,
        request: ChatCompletionRequest,
        caller: CallerContext,
        session_id: str | None,
        requested: SchemaChoice | None,
    ) -> RoutePlan:
        task_hint = caller.task_hint or (request.metadata or {}).get("task")
        if task_hint is None and requested is not None and not requested.callers_own:
            task_hint = "extraction"  # a registered schema names an extraction
        features = RequestFeatures(
            text=_user_text(request),
            api_key=caller.api_key,
            task_hint=task_hint,
            session_floor_tier=self._session_floor.get(session_id) if session_id else None,
            strict_output=requested is not None and requested.callers_own,
        )
        return plan_route(self._policy, features, self._predictor)

    def _pinned_steps(
        self,
        plan: RoutePlan,
        pinned: str,
        schema: SchemaChoice | None,
        constrained: bool | None,
    ) -> tuple[LadderStepSpec, ...]:
        if pinned not in plan.eligibility.allowed_tiers:
            raise PermissionDeniedError(
                f"tenant {plan.eligibility.tenant.id!r} may not use tier {pinned!r} for "
                "this request",
                hint=f"use model {self._config.gateway.model_name!r} or an allowed tier: "
                f"{list(plan.eligibility.allowed_tiers)}",
                param="model",
            )
        if schema is None:
            return (LadderStepSpec(tier=pinned),)
        # Structured output on one tier: constrained unless the caller turns it off, and the
        # answer's checks are reported (a pinned tier's answer is returned either way).
        return (
            LadderStepSpec(
                tier=pinned,
                constrained=constrained is not False,
                validators=["schema", "semantic"],
            ),
        )

    @staticmethod
    def _held_to(
        steps: tuple[LadderStepSpec, ...], requested: SchemaChoice, route_has_schema: bool
    ) -> tuple[LadderStepSpec, ...]:
        """Every step's answer is checked against the caller's schema. A route with a schema of
        its own decides where decoding is constrained; any other route constrains every step,
        the guarantee a response_format asks for."""
        held = []
        for step in steps:
            if step.action != "generate":
                held.append(step)
                continue
            validators = [
                *step.validators,
                *(v for v in ("schema", "semantic") if v not in step.validators),
            ]
            update: dict[str, Any] = {"validators": validators}
            if not route_has_schema:
                update["constrained"] = True
            held.append(step.model_copy(update=update))
        return tuple(held)

    def _ladder(
        self,
        plan: RoutePlan,
        pinned: str | None,
        request: ChatCompletionRequest,
        requested: SchemaChoice | None,
    ) -> Ladder:
        schema = requested or route_schema(self._policy, plan.route)
        constrained = decoding_override(request, pinned)
        if pinned is not None:
            steps = self._pinned_steps(plan, pinned, schema, constrained)
        elif requested is not None:
            steps = self._held_to(plan.steps, requested, plan.route.schema_name is not None)
        else:
            steps = plan.steps
        sources = [m.text() for m in request.messages if m.role in ("system", "developer")]
        return Ladder(
            steps=steps,
            on_exhausted=plan.route.on_exhausted if pinned is None else "accept_last",
            review_accepted=plan.route.review_required and pinned is None,
            json_schema=None if schema is None else schema.schema,
            schema_name=None if schema is None else schema.name,
            instructions=None if schema is None else schema.system_text,
            validation=ValidationContext(
                json_schema=None if schema is None else schema.schema,
                rules=() if schema is None else schema.rules,
                input_text=_user_text(request),
                sources=sources,
                input_pii=plan.eligibility.pii,
                forbidden_phrases=self._policy.forbidden_phrases,
            ),
        )

    def _prepare(self, request: ChatCompletionRequest, caller: CallerContext) -> _Prepared:
        arrived, started = time.time(), time.monotonic()
        pinned = self._pinned_tier(request.model)
        gateway = self._config.gateway
        max_tokens = request.max_completion_tokens or request.max_tokens
        max_tokens = max_tokens or gateway.default_max_tokens
        if max_tokens > gateway.max_tokens_limit:
            raise InvalidRequestError(
                f"max_tokens={max_tokens} exceeds this gateway's limit of "
                f"{gateway.max_tokens_limit}",
                hint=f"ask for at most {gateway.max_tokens_limit} tokens",
                param="max_tokens",
            )
        session_id = caller.session_id or (request.metadata or {}).get("session_id")
        requested = requested_schema(request, self._policy, caller.schema_hint)
        plan = self._plan(request, caller, session_id, requested)
        request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        generation_request = GenerationRequest(
            request_id=request_id,
            messages=tuple(
                ChatMessage("system" if m.role == "developer" else m.role, m.text())
                for m in request.messages
            ),
            max_tokens=max_tokens,
            temperature=(
                gateway.default_temperature if request.temperature is None else request.temperature
            ),
            top_p=request.top_p,
            stop=request.stops(),
            seed=request.seed,
        )
        ladder = self._ladder(plan, pinned, request, requested)
        trace = RequestTrace(
            request_id=request_id,
            arrived=arrived,
            started=started,
            policy_s=time.monotonic() - started,
            plan=plan,
            ladder=ladder,
            model=request.model,
            stream=request.stream,
            user_text=_user_text(request),
        )
        return _Prepared(trace, generation_request, session_id)

    # -- after the ladder ---------------------------------------------------------------------

    async def _settle(self, prepared: _Prepared, result: LadderResult) -> str | None:
        """Session continuity and the review lane; returns the review id, if any."""
        session = prepared.session_id
        tried = result.tiers_tried
        if session and len(tried) > 1:
            tiers = self._policy.tiers
            floor = max([tried[-1], self._session_floor.get(session, tried[-1])], key=tiers.index)
            self._session_floor[session] = floor
            self._session_floor.move_to_end(session)
            while len(self._session_floor) > _SESSIONS_KEPT:
                self._session_floor.popitem(last=False)
        if result.outcome is not Outcome.HUMAN_REVIEW or self._review_queue is None:
            return None
        item = {
            "request_id": prepared.request_id,
            "tenant": prepared.plan.eligibility.tenant.id,
            "route": prepared.plan.route.name,
            "policy_version": prepared.plan.policy_version,
            "reasons": [*prepared.plan.reasons, *(s.reason for s in result.steps)],
            "messages": [
                {"role": m.role, "content": m.content} for m in prepared.generation_request.messages
            ],
            "draft": None if result.generation is None else result.generation.text,
            "draft_tier": None if result.generation is None else result.generation.tier,
        }
        return await asyncio.to_thread(self._review_queue.submit, item)

    async def _record(
        self, prepared: _Prepared, result: LadderResult, review_id: str | None, cache: CacheStatus
    ) -> DecisionRecord:
        record = prepared.trace.record(
            self._policy,
            self._prices,
            steps=result.steps,
            outcome=str(result.outcome),
            answered_by=result.answered_by,
            confidence=result.confidence,
            cache=cache,
            review_id=review_id,
        )
        return await self._persist(record)

    async def _persist(self, record: DecisionRecord) -> DecisionRecord:
        """Durable before the response: raises (a 503) rather than answer without a record."""
        if self._recorder is not None:
            await self._recorder.record(record)
        return record

    def _metadata(self, record: DecisionRecord) -> TierserveMetadata:
        return TierserveMetadata(
            request_id=record.request_id,
            policy_version=record.policy_version,
            tenant=record.tenant,
            route=record.route,
            output_schema=record.output_schema,
            task=record.task,
            risk=record.risk,
            plan=record.plan,
            outcome=record.outcome,
            tier=record.answered_by,
            tiers_tried=[step.tier for step in record.steps if step.tier],
            reasons=[step.reason for step in record.steps],
            confidence=round(record.confidence, 4),
            confidence_quantile=self._config.cascade.confidence_quantile,
            models=record.models,
            review_id=record.review_id,
            steps=[_step_metadata(step) for step in record.steps],
            cache=record.cache,
            cached_from=record.cached_from,
            cost_usd=record.cost_usd,
        )

    @staticmethod
    def _usage(record: DecisionRecord) -> dict[str, int]:
        # Usage counts every tier tried: the escalated attempts were real work too.
        return {
            "prompt_tokens": record.prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "total_tokens": record.prompt_tokens + record.completion_tokens,
        }

    @staticmethod
    def _finish_reason(result: LadderResult) -> str:
        return result.generation.finish_reason if result.generation else "stop"

    # -- entry points ---------------------------------------------------------------------------

    def explain(self, request: ChatCompletionRequest, caller: CallerContext) -> dict[str, Any]:
        prepared = self._prepare(request, caller)
        plan = prepared.plan
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
            "route": plan.route.name,
            "schema": prepared.ladder.schema_name,
            "steps": [step.model_dump(exclude_defaults=True) for step in prepared.ladder.steps],
            "on_exhausted": prepared.ladder.on_exhausted,
            "reasons": list(plan.reasons),
            "summary": plan.summary,
        }

    async def complete(
        self, request: ChatCompletionRequest, caller: CallerContext | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        caller = caller or CallerContext()
        prepared = self._prepare(request, caller)
        lookup = look_up(self._cache, prepared.trace, request, caller.cache_control)
        if lookup.answer is not None:
            cached = lookup.answer
            record = await self._persist(
                prepared.trace.record(
                    self._policy,
                    self._prices,
                    steps=(),
                    outcome=str(Outcome.ACCEPT),
                    answered_by=cached.tier,
                    confidence=cached.confidence,
                    cache="hit",
                    cached_from=cached.request_id,
                    models=cached.models,
                )
            )
            text, finish_reason = cached.text, cached.finish_reason
        else:
            result = await self._runner.run(prepared.ladder, prepared.generation_request)
            review_id = await self._settle(prepared, result)
            record = await self._record(prepared, result, review_id, lookup.status)
            text, finish_reason = result.text, self._finish_reason(result)
            if result.outcome is Outcome.ACCEPT and result.generation is not None:
                answer = CachedAnswer(
                    text=text,
                    finish_reason=finish_reason,
                    tier=result.generation.tier,
                    request_id=prepared.request_id,
                    confidence=result.confidence,
                    models=record.models,
                )
                store(self._cache, lookup, answer)
        metadata = self._metadata(record)
        body = {
            "id": prepared.request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": self._usage(record),
            "tierserve": metadata.model_dump(),
        }
        return body, metadata.headers()

    async def stream(
        self, request: ChatCompletionRequest, caller: CallerContext | None = None
    ) -> StreamingReply:
        """Runs the ladder up to the answering step before returning, so headers are known."""
        prepared = self._prepare(request, caller or CallerContext())
        events = aiter(self._runner.stream(prepared.ladder, prepared.generation_request))
        started = await anext(events)
        assert isinstance(started, AnswerStarted)
        tried = [s.tier for s in started.steps_before if s.tier]
        if started.answered_by in self._policy.tiers:
            tried.append(started.answered_by)
        headers = {
            "x-request-id": prepared.request_id,
            "x-tierserve-policy-version": prepared.plan.policy_version,
            "x-tierserve-route": prepared.plan.route.name,
            "x-tierserve-tier": started.answered_by,
            "x-tierserve-tiers-tried": ",".join(tried),
            "x-tierserve-reasons": "; ".join(step.reason for step in started.steps_before),
        }
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        body = self._sse(request, prepared, events, include_usage)
        return StreamingReply(headers=headers, body=body)

    async def _sse(
        self,
        request: ChatCompletionRequest,
        prepared: _Prepared,
        events: AsyncIterator[Any],
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())

        def frame(choices: list[dict[str, Any]], **extra: Any) -> str:
            payload = {
                "id": prepared.request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": request.model,
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n"

        def delta(content: dict[str, Any], finish: str | None, **extra: Any) -> str:
            return frame([{"index": 0, "delta": content, "finish_reason": finish}], **extra)

        yield delta({"role": "assistant", "content": ""}, None)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    yield delta({"content": event.text}, None)
                elif isinstance(event, LadderFinished):
                    result = event.result
                    review_id = await self._settle(prepared, result)
                    cache = look_up(self._cache, prepared.trace, request, None).status
                    record = await self._record(prepared, result, review_id, cache)
                    metadata = self._metadata(record).model_dump()
                    yield delta({}, self._finish_reason(result), tierserve=metadata)
                    if include_usage:
                        yield frame([], usage=self._usage(record))
        except TierserveError as error:
            body = error_body(str(error), error.error_type, error.param, type(error).__name__)
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"
