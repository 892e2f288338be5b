"""Chat completions as orchestration: prepare, run the ladder, keep the records, reply.

Every decision is made elsewhere: admission, the request's facts and the plan in
:mod:`tierserve.api.preparation` (one policy call), what happens after each step in the ladder
kernel, the records in :mod:`tierserve.api.record_keeping`. Replies are typed models
(:mod:`tierserve.api.protocol`); HTTP and SSE framing belong to the gateway
(:mod:`tierserve.serve.http`). Unit tests drive this class with scripted engines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from tierserve.api.preparation import RequestPreparation
from tierserve.api.protocol import (
    AssistantMessage,
    CallerContext,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    ChoiceLogprobs,
    StreamingReply,
    TierserveMetadata,
    Usage,
)
from tierserve.api.record_keeping import RecordKeeper
from tierserve.api.response_cache import cached_answer, look_up, store
from tierserve.api.sessions import InMemorySessions, SessionStore
from tierserve.api.streaming import answer_chunks, prepend
from tierserve.cache import ResponseCache
from tierserve.config import StackConfig
from tierserve.engine.types import Engine, ToolCall
from tierserve.limits import AdmissionLimits
from tierserve.model_names import served_models
from tierserve.observe.decision_record import DecisionRecord
from tierserve.observe.pricing import TierPrice
from tierserve.observe.privacy import caller_disclosure
from tierserve.observe.recorder import Recorder
from tierserve.policy.breaker import CircuitBreakers, CircuitState
from tierserve.policy.classify import TaskPredictor
from tierserve.policy.runner import AnswerStarted, LadderResult, LadderRunner, TerminalMessages
from tierserve.policy.spec import AuthSpec, Policy, TenantSpec
from tierserve.policy.start_router import PromptEmbedder
from tierserve.policy.step import Step
from tierserve.quota import Quota
from tierserve.review import ReviewQueue

__all__ = ["ChatService"]


class ChatService:
    def __init__(
        self,
        config: StackConfig,
        engines: Mapping[str, Engine],
        *,
        policy: Policy,
        predictor: TaskPredictor | None = None,
        embedder: PromptEmbedder | None = None,
        review_queue: ReviewQueue | None = None,
        recorder: Recorder | None = None,
        sessions: SessionStore | None = None,
        quota: Quota | None = None,
        on_circuit_change: Callable[[str, CircuitState], None] | None = None,
    ) -> None:
        """``policy``: checked against ``config`` by whoever loaded it (``serve.app``);
        ``on_circuit_change`` hears each tier's circuit breaker change state."""
        self._config, self._policy = config, policy
        self._disclosure = caller_disclosure(policy.log_prompts)
        sessions = sessions or InMemorySessions()
        prices = {tier.name: TierPrice.of(tier) for tier in config.tiers}
        self._records = RecordKeeper(
            policy, prices, sessions, recorder=recorder, review_queue=review_queue, quota=quota
        )
        self._preparation = RequestPreparation(
            config,
            policy,
            sessions,
            self._records.persist,
            predictor=predictor,
            embedder=embedder,
            quota=quota,
        )
        cascade = config.cascade
        self._runner = LadderRunner(
            engines,
            confidence_quantile=policy.confidence_quantile,
            tier_timeout_s=cascade.tier_timeout_s,
            request_deadline_s=cascade.request_deadline_s,
            breakers=(
                CircuitBreakers(
                    cascade.breaker_failures,
                    cascade.breaker_cooldown_s,
                    on_change=on_circuit_change,
                )
                if cascade.breaker_failures is not None
                else None
            ),
            messages=TerminalMessages(
                human_review=policy.human_review_message,
                safe_failure=policy.safe_failure_message,
            ),
        )
        cache = policy.cache
        self._cache = (
            ResponseCache(ttl_s=cache.ttl_s, max_entries=cache.max_entries)
            if cache.enabled
            else None
        )
        self._background: set[asyncio.Task[None]] = set()

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def busy(self) -> bool:
        """Whether work it began (a record of a stream the client closed) is still running."""
        return bool(self._background)

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
        return self._preparation.authenticate(api_key, required=required)

    @property
    def model_names(self) -> list[str]:
        return served_models(self._config.gateway.model_name, self._policy.tiers)

    def _metadata(self, record: DecisionRecord) -> TierserveMetadata:
        return TierserveMetadata.of(record, self._policy.confidence_quantile, self._disclosure)

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
        prepared = await self._preparation.prepare(request, caller, answering=False)
        return prepared.trace.explanation()

    async def complete(
        self, request: ChatCompletionRequest, caller: CallerContext | None = None
    ) -> ChatCompletion:
        caller = caller or CallerContext()
        prepared = await self._preparation.prepare(request, caller)
        trace = prepared.trace
        lookup = look_up(self._cache, trace, request, caller.cache_control, prepared.cache_scope)
        logprobs: ChoiceLogprobs | None = None
        calls: tuple[ToolCall, ...] = ()
        if lookup.answer is not None:
            cached = lookup.answer
            record = await self._records.persist(trace.cache_hit(self._policy, cached))
            text, finish_reason = cached.text, cached.finish_reason
        else:
            result = await self._runner.run(trace.ladder, prepared.generation_request)
            record = await self._records.conclude(prepared, result, lookup.status)
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
        prepared = await self._preparation.prepare(request, caller or CallerContext())
        trace = prepared.trace
        events = aiter(self._runner.stream(trace.ladder, prepared.generation_request))
        started = await anext(events)
        assert isinstance(started, AnswerStarted)
        first = await anext(events)
        headers = trace.stream_headers(started, self._disclosure)

        async def conclude(result: LadderResult) -> DecisionRecord:
            cache = look_up(self._cache, trace, request, None, None).status
            return await self._records.conclude(prepared, result, cache)

        def client_left(partial: Step | None) -> None:
            # No await may run in a cancelled task: the record is written by a task of its own.
            self._in_background(self._records.client_closed(prepared, started, partial))

        chunks = answer_chunks(
            request,
            trace.request_id,
            started,
            prepend(first, events),
            conclude=conclude,
            metadata=self._metadata,
            client_left=client_left,
        )
        return StreamingReply(headers, chunks)

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
