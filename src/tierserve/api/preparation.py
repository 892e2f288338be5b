"""Before the ladder, in one pass: admission, the tenant, the request's facts, one policy call.

Admission checks the limits, finds the caller's tenant once (by its key) and takes the
tenant's rate quota; the request's facts are read once into
:class:`~tierserve.policy.plan.RequestFacts`; the policy plans the route and composes the
ladder. A refusal on the way is recorded (for chat completions) and raised as its typed error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tierserve.api.admission import admit
from tierserve.api.convert import generation_request, user_text, validation_context
from tierserve.api.protocol import CallerContext, ChatCompletionRequest
from tierserve.api.schema_choice import decoding_override, requested_schema, route_schema
from tierserve.api.sessions import SessionStore
from tierserve.api.trace import RequestTrace, denied_record
from tierserve.config import StackConfig
from tierserve.engine.types import GenerationRequest
from tierserve.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError
from tierserve.model_names import pinned_tier
from tierserve.observe.decision_record import DecisionRecord
from tierserve.policy.classify import TaskPredictor
from tierserve.policy.compose import compose_ladder, task_hint
from tierserve.policy.eligibility import caller_scope, default_tenant, key_owner
from tierserve.policy.plan import RequestFacts, RoutePlan, plan_route
from tierserve.policy.spec import Policy, TenantSpec
from tierserve.policy.start_router import PromptEmbedder
from tierserve.quota import Quota

__all__ = ["Prepared", "RequestPreparation"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready for its ladder."""

    trace: RequestTrace
    generation_request: GenerationRequest
    session_id: str | None
    """Scoped: ``<caller scope>/<session id>``."""
    cache_scope: str | None
    tenant: TenantSpec


class RequestPreparation:
    def __init__(
        self,
        config: StackConfig,
        policy: Policy,
        sessions: SessionStore,
        persist: Callable[[DecisionRecord], Awaitable[object]],
        *,
        predictor: TaskPredictor | None = None,
        embedder: PromptEmbedder | None = None,
        quota: Quota | None = None,
    ) -> None:
        """``persist``: writes the record of a refused request."""
        self._config, self._policy, self._sessions = config, policy, sessions
        self._persist, self._predictor, self._embedder = persist, predictor, embedder
        self._quota = quota
        self._tool_tiers = tuple(t.name for t in config.tiers if t.tool_call_parser is not None)

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

    async def prepare(
        self, request: ChatCompletionRequest, caller: CallerContext, *, answering: bool = True
    ) -> Prepared:
        """``answering``: a chat completion (False for explain), whose denials are recorded
        and whose request counts against its tenant's rate limit."""
        arrived, started = time.time(), time.monotonic()
        session_id = caller.session_id or (request.metadata or {}).get("session_id")
        admit(request, session_id, self._config.gateway.limits)
        request_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        text, end_user = user_text(request), request.end_user()

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
                        user_text=text,
                        end_user=end_user,
                        denial=denial,
                        plan=plan,
                    )
                )

        owner = key_owner(self._policy, caller.api_key)  # hashed keys: looked up once, here
        try:
            required = answering and self._policy.auth.require_keys
            tenant = self._admitted(caller.api_key, owner, required)
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
        self._check_tools(offers_tools, pinned)
        generation = generation_request(request, request_id, self._config.gateway)
        scope = caller_scope(caller.api_key, owner)
        if session_id:  # one tenant's session id never moves another's floor
            session_id = f"{scope or 'anonymous'}/{session_id}"
        requested = requested_schema(request, self._policy, caller.schema_hint)
        facts = RequestFacts(
            text=text,
            other_text="\n".join(m.text() for m in request.messages if m.role != "user"),
            tenant=tenant,
            task_hint=task_hint(
                caller.task_hint or (request.metadata or {}).get("task"), requested, offers_tools
            ),
            tool_tiers=self._tool_tiers if offers_tools else None,
            session_floor_tier=await self._sessions.floor(session_id) if session_id else None,
        )
        # The classifier's embedding and the PII scans take milliseconds of CPU per request:
        # off the event loop, so one long prompt never stalls the others' streams.
        plan = await asyncio.to_thread(
            plan_route, self._policy, facts, self._predictor, embedder=self._embedder
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
            user_text=text,
            end_user=end_user,
        )
        return Prepared(trace, generation, session_id, scope, tenant)

    def _check_tools(self, offers_tools: bool, pinned: str | None) -> None:
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
