"""The gateway's HTTP surface, built per deployment: OpenAI routes over a ChatService, error
bodies, SSE framing, health and metrics.

Routes: ``POST /v1/chat/completions`` (JSON or SSE), ``POST /v1/route/explain``,
``GET /v1/models``, ``GET /v1/models/{id}``, ``GET /healthz`` (``/health``, vLLM's name for it)
and ``GET /metrics``.

A stream's promise: its decision record is committed before the chunk that carries the finish
reason and the ``tierserve`` metadata, and before ``data: [DONE]``. When the record cannot be
committed (or the ladder fails after the headers went out) the stream ends with one OpenAI error
event instead, and no ``[DONE]``: a client that saw ``[DONE]`` saw a recorded answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException

from tierserve.api.protocol import (
    CallerContext,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ErrorBody,
    error_body,
)
from tierserve.api.service import ChatService
from tierserve.errors import AuthenticationError, ModelNotFoundError, TierserveError
from tierserve.model_names import split_model
from tierserve.observe.metrics import TierserveMetrics, scrape
from tierserve.serve.body_limit import BodySizeLimit

__all__ = ["TierStatuses", "build_http_app", "sse"]

TierStatuses = Callable[[], Awaitable[dict[str, dict[str, Any] | str]]]
"""Each tier's status (a dict), or why it is unavailable (a string)."""


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}


def _documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route may answer with, in OpenAPI (each an OpenAI error body), so
    /openapi.json lists every status a client can see."""
    why = {
        400: "The request is invalid; the message names the field and the fix.",
        401: "The policy requires an API key, and none or an unknown one was sent.",
        403: "The tenant may not use the tier or route it asked for.",
        404: "No such route, or the model named is not served here (model_not_found).",
        413: "The body is over gateway.limits.max_body_bytes.",
        429: "The tenant's request or token rate limit is spent; see Retry-After.",
        503: "No tier could answer now (queue full, tier down, decision log unwritable); "
        "see Retry-After.",
        504: "The request's deadline passed before a tier answered; see Retry-After.",
    }
    return {status: {"model": ErrorBody, "description": why[status]} for status in statuses}


_ANSWERING = _documented(400, 401, 403, 404, 413, 429, 503, 504)


_UNKNOWN_PARAMETER = (
    "unknown parameter, refused rather than ignored (tierserve serves OpenAI's chat-completions "
    "parameters and vLLM's top_k, min_p, repetition_penalty, min_tokens and ignore_eos; the "
    "docs/api.md's parameter table lists each)"
)


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    parts, first_param = [], None
    for item in error.errors():
        location = [str(p) for p in item.get("loc", ()) if p != "body"]
        where = ".".join(location) or "body"
        first_param = first_param or (location[0] if location else None)
        if item.get("type") == "extra_forbidden" and len(location) == 1:
            parts.append(f"{where}: {_UNKNOWN_PARAMETER}")
        else:
            parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts), first_param


def _bearer_key(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def _caller(request: Request) -> CallerContext:
    return CallerContext(
        api_key=_bearer_key(request),
        task_hint=request.headers.get("x-tierserve-task"),
        session_id=request.headers.get("x-session-id"),
        schema_hint=request.headers.get("x-tierserve-schema"),
        cache_control=request.headers.get("cache-control"),
    )


async def sse(
    chunks: AsyncIterator[ChatCompletionChunk],
    on_error: Callable[[TierserveError], None] = lambda _: None,
) -> AsyncIterator[str]:
    """Server-sent events: one ``data:`` line per chunk, then ``[DONE]``; an error after the
    headers ends the stream with an error event and no ``[DONE]``."""
    try:
        async for chunk in chunks:
            yield f"data: {chunk.model_dump_json()}\n\n"
    except TierserveError as error:
        on_error(error)
        yield f"data: {ErrorBody.of(error).model_dump_json()}\n\n"
        return
    yield "data: [DONE]\n\n"


def build_http_app(
    current: Callable[[], ChatService],
    *,
    statuses: TierStatuses,
    metrics: TierserveMetrics | None = None,
    retry_after_s: float = 2.0,
) -> FastAPI:
    """``current``: the service deciding now; a request keeps the one it began with, so a new
    policy version (the gateway's ``reconfigure``) never decides half a request. Each tier's
    card says whether it serves the model version the policy's thresholds were calibrated on."""
    app = FastAPI(title="tierserve", description="Tiered LLM inference behind an OpenAI API.")
    max_body = current().limits.max_body_bytes
    too_large = (
        f"the request body is larger than {max_body} bytes (fix: send a smaller body, or raise "
        "gateway.limits.max_body_bytes in the stack config)"
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=max_body,
        message=too_large,
        error_body=error_body(too_large, "invalid_request_error", None, "request_too_large"),
    )

    def count(error_type: str, status: int) -> None:
        if metrics is not None:
            metrics.count_error(error_type, status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        message += " (fix: send an OpenAI chat-completions body; see GET /docs)"
        count("invalid_request_error", 400)
        body = error_body(message, "invalid_request_error", param, None)
        return JSONResponse(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own refusals (404, 405, 413) in OpenAI's error shape, not {"detail": ...}.
        kind = "invalid_request_error" if error.status_code < 500 else "server_error"
        count(kind, error.status_code)
        body = error_body(str(error.detail), kind, None, _HTTP_CODES.get(error.status_code))
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(TierserveError)
    async def tierserve_error(_: Request, error: TierserveError) -> JSONResponse:
        count(error.error_type, error.http_status)
        body = ErrorBody.of(error).model_dump()
        # Retryable means the same request may succeed later: say when (RFC 9110); a rate
        # limit knows when its window frees.
        wait = getattr(error, "retry_after_s", retry_after_s)
        headers = {"Retry-After": str(math.ceil(wait))} if error.retryable else {}
        if isinstance(error, AuthenticationError):
            headers["WWW-Authenticate"] = 'Bearer realm="tierserve"'  # RFC 6750
        return JSONResponse(body, status_code=error.http_status, headers=headers)

    @app.post("/v1/chat/completions", responses=_ANSWERING)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        caller, service = _caller(request), current()
        if body.stream:
            reply = await service.stream(body, caller)
            events = sse(reply.chunks, lambda e: count(e.error_type, e.http_status))
            return StreamingResponse(events, media_type="text/event-stream", headers=reply.headers)
        completion = await service.complete(body, caller)
        return JSONResponse(
            completion.model_dump(mode="json"), headers=completion.tierserve.headers()
        )

    @app.post("/v1/route/explain", responses=_ANSWERING)
    async def explain(body: ChatCompletionRequest, request: Request) -> dict[str, Any]:
        """The plan the policy would follow for this request, without generating anything."""
        return await current().explain(body, _caller(request))

    # OpenAI's `created` is when a model was made; ours is when this gateway's app was built,
    # so it is the same on every call (a list that changed each second would look like new
    # models to a client that caches it).
    created = int(time.time())

    def tier_card(tier: str, status: dict[str, Any] | str) -> dict[str, Any] | str:
        calibrated = current().policy.calibrated_on.get(tier)
        if calibrated is None or not isinstance(status, dict):
            return status
        served = status.get("model_version")
        return {**status, "calibrated_on": calibrated, "calibrated": served == calibrated}

    async def model_card(model_id: str, known: dict[str, dict[str, Any] | str]) -> dict[str, Any]:
        _, tier = split_model(model_id)
        return {
            "id": model_id,
            "object": "model",
            "created": created,
            "owned_by": "tierserve",
            "tierserve": tier_card(tier, known[tier]) if tier else {"cascade": list(known)},
        }

    def require_key(service: ChatService, request: Request, required: bool) -> None:
        """A 401 unless the request carries a known key, where the policy requires one."""
        if required:
            service.authenticate(_bearer_key(request))

    def access(service: ChatService) -> dict[str, Any]:
        policy = {"policy_version": service.policy.version}
        if service.auth.require_keys:
            return {"auth": "api_key_required", **policy}
        return {"auth": "open", "open_tenant": service.default_tenant, **policy}

    @app.get("/v1/models", responses=_documented(401))
    async def models(request: Request) -> dict[str, Any]:
        """Every model name served here; ``tierserve.auth`` says whether keys are required."""
        service = current()
        require_key(service, request, service.auth.require_keys)
        known = await statuses()
        data = [await model_card(model_id, known) for model_id in service.model_names]
        return {"object": "list", "data": data, "tierserve": access(service)}

    @app.get("/v1/models/{model_id:path}", responses=_documented(401, 404))
    async def model(model_id: str, request: Request) -> dict[str, Any]:
        service = current()
        require_key(service, request, service.auth.require_keys)
        if model_id not in service.model_names:
            raise ModelNotFoundError(
                "the requested model is not served here",
                hint=f"use one of {service.model_names}",
                param="model",
            )
        return await model_card(model_id, await statuses())

    @app.get("/metrics", responses=_documented(401))
    async def prometheus(request: Request) -> Response:
        service = current()
        require_key(service, request, service.auth.protect_metrics)
        return Response(scrape(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", responses={503: {"description": "A tier is not serving."}})
    @app.get("/health", responses={503: {"description": "A tier is not serving."}})
    async def healthz() -> JSONResponse:
        known = await statuses()
        healthy = all(isinstance(s, dict) for s in known.values())
        body = {
            "status": "ok" if healthy else "degraded",
            "policy_version": current().policy.version,
            "tiers": known,
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app
