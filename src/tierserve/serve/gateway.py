"""The ingress deployment: OpenAI-compatible HTTP over :class:`~tierserve.api.service.ChatService`.

Routes: ``POST /v1/chat/completions`` (JSON or SSE), ``POST /v1/route/explain``,
``GET /v1/models``, ``GET /healthz`` and ``GET /metrics`` (Prometheus, every gateway replica of
this node summed; see :mod:`tierserve.observe.metrics`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from tierserve.api.protocol import ChatCompletionRequest, error_body
from tierserve.api.service import CallerContext, ChatService
from tierserve.config import parse_config
from tierserve.engine.types import Generation, GenerationChunk, GenerationRequest
from tierserve.errors import TierserveError, TierUnavailableError
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics, scrape
from tierserve.observe.recorder import DurableRecorder
from tierserve.policy.spec import Policy, TaskClass
from tierserve.review import JsonlReviewQueue

__all__ = ["Gateway", "HandleEngine", "app"]

app = FastAPI(title="tierserve", description="Tiered LLM inference behind an OpenAI API.")


def _unwrap(tier: str, error: RayTaskError) -> Exception:
    cause = getattr(error, "cause", None)
    if isinstance(cause, TierserveError):
        return cause
    return TierUnavailableError(tier, f"{type(cause).__name__}: {cause}")


class HandleEngine:
    """A tier's Serve handle seen as an :class:`~tierserve.engine.Engine`."""

    def __init__(self, tier: str, handle: DeploymentHandle[Any]) -> None:
        self._tier = tier
        self._handle = handle

    async def generate(self, request: GenerationRequest) -> Generation:
        try:
            result: Generation = await self._handle.generate.remote(request)
        except RayTaskError as error:
            raise _unwrap(self._tier, error) from None
        return result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        try:
            chunks = self._handle.options(stream=True).stream.remote(request)
            assert isinstance(chunks, DeploymentResponseGenerator)
            async for chunk in chunks:
                yield chunk
        except RayTaskError as error:
            raise _unwrap(self._tier, error) from None


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    parts, first_param = [], None
    for item in error.errors():
        location = [str(p) for p in item.get("loc", ()) if p != "body"]
        where = ".".join(location) or "body"
        first_param = first_param or (location[0] if location else None)
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts), first_param


def _count_error(request: Request, error_type: str, status: int) -> None:
    metrics: TierserveMetrics | None = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.request_errors.labels(error_type, str(status)).inc()


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    message, param = _validation_message(error)
    message += " (fix: send an OpenAI chat-completions body; see GET /docs)"
    _count_error(request, "invalid_request_error", 400)
    return JSONResponse(error_body(message, "invalid_request_error", param, None), status_code=400)


@app.exception_handler(TierserveError)
async def _tierserve_error(request: Request, error: TierserveError) -> JSONResponse:
    body = error_body(str(error), error.error_type, error.param, type(error).__name__)
    _count_error(request, error.error_type, error.http_status)
    return JSONResponse(body, status_code=error.http_status)


def _caller(request: Request) -> CallerContext:
    authorization = request.headers.get("authorization", "")
    scheme, _, key = authorization.partition(" ")
    return CallerContext(
        api_key=key.strip() if scheme.lower() == "bearer" and key.strip() else None,
        task_hint=request.headers.get("x-tierserve-task"),
        session_id=request.headers.get("x-session-id"),
        schema_hint=request.headers.get("x-tierserve-schema"),
        cache_control=request.headers.get("cache-control"),
    )


@serve.ingress(app)
class Gateway:
    """Deployment body; ``serve.deployment`` options are applied in :func:`build_app`."""

    def __init__(
        self,
        config: dict[str, Any],
        tiers: dict[str, DeploymentHandle[Any]],
        policy: dict[str, Any] | None = None,
    ) -> None:
        self._config = parse_config(config, source="gateway config")
        self._tiers = tiers
        observe = self._config.observe
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiprocess_dir:  # on another node than build_app's, the directory is new here
            Path(multiprocess_dir).mkdir(parents=True, exist_ok=True)
        self._metrics = TierserveMetrics(REGISTRY)
        app.state.metrics = self._metrics  # the module-level error handlers count errors here
        decision_log = DecisionLog(
            observe.decision_log_path,
            retention_days=observe.retention_days,
            max_records=observe.max_records,
        )
        engines = {name: HandleEngine(name, handle) for name, handle in tiers.items()}
        predictor = None
        if policy is not None and policy["examples"]:
            from tierserve.signals.task_model import EmbeddingTaskClassifier, LabelledExample

            predictor = EmbeddingTaskClassifier.train(
                [LabelledExample(e["text"], TaskClass(e["task"])) for e in policy["examples"]]
            )
        self._service = ChatService(
            self._config,
            engines,
            policy=None if policy is None else Policy.model_validate(policy["policy"]),
            predictor=predictor,
            review_queue=JsonlReviewQueue(self._config.gateway.review_queue_path),
            recorder=DurableRecorder(decision_log, self._metrics),
        )

    async def _statuses(self) -> dict[str, dict[str, Any] | str]:
        async def one(handle: DeploymentHandle[Any]) -> dict[str, Any] | str:
            try:
                status = await asyncio.wait_for(handle.status.remote(), timeout=10)
            except Exception as error:
                return f"unavailable: {type(error).__name__}"
            as_dict: dict[str, Any] = status.as_dict()
            return as_dict

        names = list(self._tiers)
        results = await asyncio.gather(*(one(self._tiers[n]) for n in names))
        return dict(zip(names, results, strict=True))

    @app.post("/v1/chat/completions")
    async def chat_completions(self, body: ChatCompletionRequest, request: Request) -> Response:
        caller = _caller(request)
        if body.stream:
            reply = await self._service.stream(body, caller)
            return StreamingResponse(
                reply.body, media_type="text/event-stream", headers=reply.headers
            )
        payload, headers = await self._service.complete(body, caller)
        return JSONResponse(payload, headers=headers)

    @app.post("/v1/route/explain")
    async def explain(self, body: ChatCompletionRequest, request: Request) -> dict[str, Any]:
        """The plan the policy would follow for this request, without generating anything."""
        return self._service.explain(body, _caller(request))

    @app.get("/v1/models")
    async def models(self) -> dict[str, Any]:
        statuses = await self._statuses()
        name = self._config.gateway.model_name
        data: list[dict[str, Any]] = []
        for model_id in self._service.model_names:
            tier = model_id.removeprefix(f"{name}/") if model_id != name else None
            data.append(
                {
                    "id": model_id,
                    "object": "model",
                    "created": int(time.time()),
                    "owned_by": "tierserve",
                    "tierserve": statuses[tier] if tier else {"cascade": list(self._tiers)},
                }
            )
        return {"object": "list", "data": data}

    @app.get("/metrics")
    async def metrics(self) -> Response:
        return Response(scrape(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz(self) -> JSONResponse:
        statuses = await self._statuses()
        healthy = all(isinstance(s, dict) for s in statuses.values())
        body = {"status": "ok" if healthy else "degraded", "tiers": statuses}
        return JSONResponse(body, status_code=200 if healthy else 503)
