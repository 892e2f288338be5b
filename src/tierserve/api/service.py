"""Chat completions as orchestration: plan, compose the ladder, run it, record, reply.

Every decision is made elsewhere: the plan and the ladder's composition in :mod:`tierserve.policy`,
what happens after each step in the ladder kernel, the record in :mod:`tierserve.api.recording`.
Replies are typed models (:mod:`tierserve.api.protocol`); HTTP and SSE framing belong to the
gateway (:mod:`tierserve.serve.http`). Unit tests drive this class with scripted engines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from tierserve.api.admission import admit
from tierserve.api.convert import generation_request, user_text, validation_context
from tierserve.api.protocol import (
    AssistantMessage,
    CallerContext,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    StreamingReply,
    TierserveMetadata,
    Usage,
)
from tierserve.api.recording import (
    Recorder,
    RequestTrace,
    cached_answer,
    denied_record,
    look_up,
    review_item,
    store,
)
from tierserve.api.schema_choice import decoding_override, requested_schema, route_schema
from tierserve.api.sessions import InMemorySessions, SessionStore
from tierserve.cache import ResponseCache
from tierserve.config import StackConfig
from tierserve.engine.types import Engine, GenerationRequest, ToolCall
from tierserve.errors import (
    AuthenticationError,
    DecisionLogError,
    InvalidRequestError,
    PermissionDeniedError,
)
from tierserve.limits import AdmissionLimits
from tierserve.model_names import pinned_tier, served_models
from tierserve.observe.record import CacheStatus, DecisionRecord, TierPrice, kept_record
from tierserve.policy.breaker import CircuitBreakers
from tierserve.policy.classify import TaskPredictor
from tierserve.policy.compose import compose_ladder, raised_floor, task_hint
from tierserve.policy.defaults import cascade_policy
from tierserve.policy.eligibility import caller_scope, default_tenant, key_owner
from tierserve.policy.plan import RequestFeatures, RoutePlan, plan_route
from tierserve.policy.runner import (
    AnswerStarted,
    LadderFinished,
    LadderResult,
    LadderRunner,
    TerminalMessages,
    TextDelta,
)
from tierserve.policy.spec import AuthSpec, Policy, RateLimitSpec, TenantSpec
from tierserve.policy.start_router import PromptEmbedder
from tierserve.policy.step import Outcome, Step
from tierserve.quota import Quota
from tierserve.review import ReviewQueue

__all__ = ["ChatService"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Prepared:
    trace: RequestTrace
    generation_request: GenerationRequest
    session_id: str | None
    """Scoped: ``<caller scope>/<session id>``."""
    cache_scope: str | None
    tenant: TenantSpec


class ChatService:
    def __init__(
        self,
        config: StackConfig,
        engines: Mapping[str, Engine],
        *,
        policy: Policy | None = None,
        predictor: TaskPredictor | None = None,
        embedder: PromptEmbedder | None = None,
        review_queue: ReviewQueue | None = None,
        recorder: Recorder | None = None,
        sessions: SessionStore | None = None,
        quota: Quota | None = None,
    ) -> None:
        self._config = config
        if policy is not None:
            policy.check_stack(config)
        self._policy = policy or cascade_policy(config)
        self._predictor = predictor
        self._embedder = embedder
        self._review_queue = review_queue
        self._recorder = recorder
        self._sessions = sessions or InMemorySessions()
        self._quota = quota
        cascade = config.cascade
        self._runner = LadderRunner(
            engines,
            confidence_quantile=cascade.confidence_quantile,
            tier_timeout_s=cascade.tier_timeout_s,
            request_deadline_s=cascade.request_deadline_s,
            breakers=(
                CircuitBreakers(cascade.breaker_failures, cascade.breaker_cooldown_s)
                if cascade.breaker_failures is not None
                else None
            ),
            messages=TerminalMessages(
                human_review=self._policy.human_review_message,
                safe_failure=self._policy.safe_failure_message,
            ),
        )
        cache = self._policy.cache
        self._cache = (
            ResponseCache(ttl_s=cache.ttl_s, max_entries=cache.max_entries)
            if cache.enabled
            else None
        )
        self._prices = {tier.name: TierPrice.of(tier) for tier in config.tiers}
        self._tool_tiers = tuple(t.name for t in config.tiers if t.tool_call_parser is not None)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def limits(self) -> AdmissionLimits:
        return self._config.gateway.limits

    @property
    def auth(self) -> AuthSpec:
        return self._policy.auth

    @property
    def default_tenant(self) -> str:
        return self._policy.default_tenant

    def authenticate(self, api_key: str | None, *, required: bool = True) -> TenantSpec:
        """The key's tenant; the default tenant for a missing or unknown key unless
        ``required``, when such a key raises AuthenticationError (401)."""
        return self._admitted(api_key, key_owner(self._policy, api_key), required)

    def _admitted(
        self, api_key: str | None, owner: TenantSpec | None, required: bool
    ) -> TenantSpec:
        if owner is not None:
            return owner
        if required:
            raise AuthenticationError.of(missing=not api_key)
        return default_tenant(self._policy)

    @property
    def model_names(self) -> list[str]:
        return served_models(self._config.gateway.model_name, self._policy.tiers)

    async def _prepare(
        self, request: ChatCompletionRequest, caller: CallerContext, *, answering: bool = True
    ) -> _Prepared:
        """``answering``: a chat completion (False for explain), whose denials are recorded
        and whose request counts against its tenant's rate limit."""
        arrived, started = time.time(), time.monotonic()
        session_id = caller.session_id or (request.metadata or {}).get("session_id")
        admit(request, session_id, self._config.gateway.limits)
        request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

        async def denied(denial: str, plan: RoutePlan | None = None, tenant_id: str = "-") -> None:
            if answering:
                await self._persist(
                    denied_record(
                        self._policy,
                        request_id=request_id,
                        arrived=arrived,
                        started=started,
                        tenant=tenant_id,
                        model=request.model,
                        stream=request.stream,
                        user_text=user_text(request),
                        end_user=request.end_user(),
                        denial=denial,
                        plan=plan,
                    )
                )

        owner = key_owner(self._policy, caller.api_key)  # hashed keys: looked up once here
        try:
            tenant = self._admitted(caller.api_key, owner, answering and self.auth.require_keys)
        except AuthenticationError as error:
            await denied(error.reason)
            raise

        if tenant.rate_limit is not None and self._quota is not None:
            refusal = await self._quota.admit(tenant.id, tenant.rate_limit)
            if refusal is not None:
                await denied(refusal.reason, tenant_id=tenant.id)
                raise refusal.error(tenant.id)
        pinned = pinned_tier(request.model, self._config.gateway.model_name, self._policy.tiers)
        offers_tools = request.offers_tools()
        if offers_tools and not self._tool_tiers:
            raise InvalidRequestError(
                "no tier of this stack can call tools",
                hint="drop tools, or set tool_call_parser on a tier in the stack config",
                param="tools",
            )
        if offers_tools and pinned is not None and pinned not in self._tool_tiers:
            raise InvalidRequestError(
                f"tier {pinned!r} cannot call tools (no tool_call_parser is configured)",
                hint=f"pin one of {list(self._tool_tiers)}, use the cascade, or drop tools",
                param="tools",
            )
        generation = generation_request(request, request_id, self._config.gateway)
        scope = caller_scope(caller.api_key, owner)
        if session_id:  # one tenant's session id never moves another's floor
            session_id = f"{scope or 'anonymous'}/{session_id}"
        requested = requested_schema(request, self._policy, caller.schema_hint)
        features = RequestFeatures(
            text=user_text(request),
            other_text="\n".join(m.text() for m in request.messages if m.role != "user"),
            api_key=caller.api_key,
            task_hint=task_hint(
                caller.task_hint or (request.metadata or {}).get("task"), requested, offers_tools
            ),
            tool_tiers=self._tool_tiers if offers_tools else None,
            session_floor_tier=await self._sessions.floor(session_id) if session_id else None,
        )
        # The classifier's embedding and the PII scans take milliseconds of CPU per request:
        # off the event loop, so one long prompt never stalls the others' streams.
        plan = await asyncio.to_thread(
            plan_route, self._policy, features, self._predictor, embedder=self._embedder
        )
        try:
            ladder = compose_ladder(
                plan,
                pinned=pinned,
                requested=requested,
                route_schema=route_schema(self._policy, plan.route),
                constrained=decoding_override(request, pinned),
                cascade_name=self._config.gateway.model_name,
                validation=validation_context(request, self._policy),
            )
        except PermissionDeniedError:
            await denied("denied=permission", plan, tenant.id)
            raise
        trace = RequestTrace(
            request_id=request_id,
            arrived=arrived,
            started=started,
            policy_s=time.monotonic() - started,
            plan=plan,
            ladder=ladder,
            model=request.model,
            stream=request.stream,
            user_text=features.text,
            end_user=request.end_user(),
        )
        return _Prepared(trace, generation, session_id, scope, tenant)

    async def _charge(self, prepared: _Prepared, record: DecisionRecord) -> None:
        rate: RateLimitSpec | None = prepared.tenant.rate_limit
        tokens = record.prompt_tokens + record.completion_tokens
        if rate is not None and self._quota is not None and tokens:
            await self._quota.charge(prepared.tenant.id, rate, tokens)

    async def _conclude(
        self, prepared: _Prepared, result: LadderResult, cache: CacheStatus
    ) -> DecisionRecord:
        """The session floor, the review lane, then the decision record, committed before the
        caller sees the answer's last chunk (raises DecisionLogError, a 503, when it can't)."""
        trace, session = prepared.trace, prepared.session_id
        if session:
            floor = await self._sessions.floor(session)
            raised = raised_floor(self._policy.tiers, floor, result.tiers_tried)
            if raised is not None and raised != floor:
                await self._sessions.set_floor(session, raised)
        review_id = None
        if result.outcome is Outcome.HUMAN_REVIEW and self._review_queue is not None:
            item = review_item(
                trace, result, prepared.generation_request.messages, self._policy.log_prompts
            )
            review_id = await asyncio.to_thread(self._review_queue.submit, item)
        record = trace.record(
            self._policy,
            self._prices,
            steps=result.steps,
            outcome=result.outcome,
            answered_by=result.answered_by,
            confidence=result.confidence,
            cache=cache,
            review_id=review_id,
        )
        record = await self._persist(record, trace.ladder.callers_schema)
        await self._charge(prepared, record)
        return record

    async def _persist(
        self, record: DecisionRecord, callers_schema: bool = False
    ) -> DecisionRecord:
        """Writes ``record`` as the policy keeps records; returns it as it was, for the
        caller's response. ``callers_schema``: the request sent its own schema."""
        if self._recorder is not None:
            kept = kept_record(record, self._policy.log_prompts, callers_schema)
            await self._recorder.record(kept)
        return record

    def _metadata(self, record: DecisionRecord) -> TierserveMetadata:
        return TierserveMetadata.of(record, self._config.cascade.confidence_quantile)

    # -- entry points ---------------------------------------------------------------------------

    async def explain(
        self, request: ChatCompletionRequest, caller: CallerContext
    ) -> dict[str, Any]:
        """The plan and the ladder the policy would follow, without generating anything: for
        the caller's key only where ``gateway.explain_uses_key`` says explain is authenticated,
        else as the default tenant's (the same answer for any key, known or not)."""
        if self.auth.protect_explain:
            self.authenticate(caller.api_key)
        if not self._config.gateway.explain_uses_key:
            caller = dataclasses.replace(caller, api_key=None)
        prepared = await self._prepare(request, caller, answering=False)
        return prepared.trace.explanation()

    async def complete(
        self, request: ChatCompletionRequest, caller: CallerContext | None = None
    ) -> ChatCompletion:
        caller = caller or CallerContext()
        prepared = await self._prepare(request, caller)
        trace = prepared.trace
        lookup = look_up(self._cache, trace, request, caller.cache_control, prepared.cache_scope)
        logprobs: ChoiceLogprobs | None = None
        calls: tuple[ToolCall, ...] = ()
        if lookup.answer is not None:
            cached = lookup.answer
            record = await self._persist(trace.cache_hit(self._policy, cached))
            text, finish_reason = cached.text, cached.finish_reason
        else:
            result = await self._runner.run(trace.ladder, prepared.generation_request)
            record = await self._conclude(prepared, result, lookup.status)
            text, finish_reason, calls = result.text, result.finish_reason, result.tool_calls
            store(self._cache, lookup, cached_answer(result, record))
            if request.logprobs and result.accepted is not None:
                logprobs = ChoiceLogprobs.of(result.accepted.logprobs)
        choice = Choice(
            message=AssistantMessage.of(text, calls),
            finish_reason=finish_reason,
            logprobs=logprobs,
        )
        return ChatCompletion(
            id=trace.request_id,
            created=int(time.time()),
            model=request.model,
            choices=[choice],
            usage=Usage.of(record),
            tierserve=self._metadata(record),
        )

    async def stream(
        self, request: ChatCompletionRequest, caller: CallerContext | None = None
    ) -> StreamingReply:
        """Runs the ladder up to the answer's first text before returning, so the headers are
        known, an error before the first token is an HTTP error rather than an SSE event, and
        the first chunk (the role with the first text, as vLLM sends it) marks the first
        token for every client's time-to-first-token."""
        prepared = await self._prepare(request, caller or CallerContext())
        trace = prepared.trace
        events = aiter(self._runner.stream(trace.ladder, prepared.generation_request))
        started = await anext(events)
        assert isinstance(started, AnswerStarted)
        first = await anext(events)
        headers = trace.stream_headers(started.answered_by, started.steps_before)
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        chunks = self._chunks(request, prepared, started, _prepend(first, events), include_usage)
        return StreamingReply(headers, chunks)

    async def _chunks(
        self,
        request: ChatCompletionRequest,
        prepared: _Prepared,
        started: AnswerStarted,
        events: AsyncIterator[Any],
        include_usage: bool,
    ) -> AsyncIterator[ChatCompletionChunk]:
        created = int(time.time())
        role: Literal["assistant"] | None = "assistant"
        tokens_sent, chars_sent, finished = 0, 0, False
        began = time.monotonic()

        def chunk(*choices: ChunkChoice, **extra: Any) -> ChatCompletionChunk:
            return ChatCompletionChunk(
                id=prepared.trace.request_id,
                created=created,
                model=request.model,
                choices=list(choices),
                **extra,
            )

        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    tokens_sent += event.tokens
                    chars_sent += len(event.text)
                    logprobs = ChoiceLogprobs.of(event.logprobs) if request.logprobs else None
                    delta = Delta(role=role, content=event.text)
                    yield chunk(ChunkChoice(delta=delta, logprobs=logprobs))
                    role = None
                elif isinstance(event, LadderFinished):
                    finished = True
                    result = event.result
                    cache = look_up(self._cache, prepared.trace, request, None, None).status
                    record = await self._conclude(prepared, result, cache)
                    if result.tool_calls:
                        yield chunk(ChunkChoice(delta=Delta.calls(result.tool_calls, role)))
                        role = None
                    finish = ChunkChoice(delta=Delta(role=role), finish_reason=result.finish_reason)
                    yield chunk(finish, tierserve=self._metadata(record))
                    if include_usage:
                        yield chunk(usage=Usage.of(record))
        except (GeneratorExit, asyncio.CancelledError):
            if not finished:
                # The client left: no await may run in a cancelled task, so the record is
                # written by a task of its own.
                left = _client_closed(started, tokens_sent, chars_sent, began)
                self._in_background(self._record_client_closed(prepared, started, left))
            raise

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _record_client_closed(
        self, prepared: _Prepared, started: AnswerStarted, partial: Step | None
    ) -> None:
        steps = [*started.steps_before, *([partial] if partial else [])]
        record = prepared.trace.record(
            self._policy,
            self._prices,
            steps=steps,
            outcome=Outcome.CLIENT_CLOSED,
            answered_by=started.answered_by,
            confidence=0.0,
            cache="bypass",
        )
        try:
            await self._persist(record, prepared.trace.ladder.callers_schema)
            await self._charge(prepared, record)
        except DecisionLogError as error:
            _log.warning("request %s: client_closed record lost: %s", record.request_id, error)


def _client_closed(started: AnswerStarted, tokens: int, chars: int, began: float) -> Step | None:
    """The step of the tier whose answer was streaming when the client left (None when the
    answer was a terminal outcome's message)."""
    if started.answered_by in {str(o) for o in Outcome}:
        return None
    return Step(
        tier=started.answered_by,
        outcome=Outcome.CLIENT_CLOSED,
        reason=f"client_closed after {tokens} tokens ({chars} characters) sent",
        completion_tokens=tokens,
        latency_s=time.monotonic() - began,
    )


async def _prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event
