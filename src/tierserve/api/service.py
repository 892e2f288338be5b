"""Chat completions without HTTP: request -> cascade -> OpenAI-shaped body and headers.

The FastAPI gateway is a thin adapter over :class:`ChatService`; this module is what unit
tests drive with scripted engines.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from tierserve.api.protocol import (
    ChatCompletionRequest,
    StepMetadata,
    TierserveMetadata,
    error_body,
)
from tierserve.config import StackConfig
from tierserve.engine.types import ChatMessage, Engine, GenerationRequest
from tierserve.errors import InvalidRequestError, TierserveError
from tierserve.policy.cascade import (
    AnswerStarted,
    Cascade,
    CascadeFinished,
    CascadeResult,
    LadderStep,
    StepRecord,
    TextDelta,
)

__all__ = ["ChatService", "StreamingReply"]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def _step_metadata(step: StepRecord) -> StepMetadata:
    return StepMetadata(
        tier=step.tier,
        model=step.model,
        outcome=str(step.outcome),
        reason=step.reason,
        confidence=None if step.confidence is None else round(step.confidence, 4),
        threshold=step.threshold,
        prompt_tokens=step.prompt_tokens,
        completion_tokens=step.completion_tokens,
        ttft_ms=_ms(step.ttft_s),
        latency_ms=_ms(step.latency_s) or 0.0,
        error=step.error,
    )


@dataclass(frozen=True, slots=True)
class StreamingReply:
    headers: dict[str, str]
    body: AsyncIterator[str]


class ChatService:
    def __init__(self, config: StackConfig, engines: Mapping[str, Engine]) -> None:
        self._config = config
        self._engines = engines
        full = [LadderStep(t.name, t.confidence_threshold) for t in config.tiers]
        full[-1] = LadderStep(full[-1].tier, None)
        self._cascades: dict[str, Cascade] = {config.gateway.model_name: self._cascade(full)}
        for tier in config.tiers:
            pinned = f"{config.gateway.model_name}/{tier.name}"
            self._cascades[pinned] = self._cascade([LadderStep(tier.name, None)])

    def _cascade(self, ladder: list[LadderStep]) -> Cascade:
        return Cascade(
            ladder,
            self._engines,
            confidence_quantile=self._config.cascade.confidence_quantile,
            tier_timeout_s=self._config.cascade.tier_timeout_s,
        )

    @property
    def model_names(self) -> list[str]:
        return list(self._cascades)

    def _prepare(self, request: ChatCompletionRequest) -> tuple[Cascade, GenerationRequest]:
        cascade = self._cascades.get(request.model)
        if cascade is None:
            raise InvalidRequestError(
                f"model {request.model!r} is not served here",
                hint=f"use one of {self.model_names} (GET /v1/models lists them)",
                param="model",
            )
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
        messages = tuple(
            ChatMessage("system" if m.role == "developer" else m.role, m.text())
            for m in request.messages
        )
        generation_request = GenerationRequest(
            request_id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
            messages=messages,
            max_tokens=max_tokens,
            temperature=(
                gateway.default_temperature if request.temperature is None else request.temperature
            ),
            top_p=request.top_p,
            stop=request.stops(),
            seed=request.seed,
        )
        return cascade, generation_request

    def _metadata(self, request_id: str, result: CascadeResult) -> TierserveMetadata:
        return TierserveMetadata(
            request_id=request_id,
            tier=result.answered_by,
            tiers_tried=list(result.tiers_tried),
            reasons=[step.reason for step in result.steps],
            confidence=round(result.confidence, 4),
            confidence_quantile=self._config.cascade.confidence_quantile,
            steps=[_step_metadata(step) for step in result.steps],
        )

    @staticmethod
    def _usage(result: CascadeResult) -> dict[str, int]:
        # Usage counts every tier tried: the escalated attempts were real work too.
        prompt = sum(step.prompt_tokens for step in result.steps)
        completion = sum(step.completion_tokens for step in result.steps)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    async def complete(
        self, request: ChatCompletionRequest
    ) -> tuple[dict[str, Any], dict[str, str]]:
        cascade, generation_request = self._prepare(request)
        result = await cascade.run(generation_request)
        metadata = self._metadata(generation_request.request_id, result)
        body = {
            "id": generation_request.request_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.generation.text},
                    "finish_reason": result.generation.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": self._usage(result),
            "tierserve": metadata.model_dump(),
        }
        return body, metadata.headers()

    async def stream(self, request: ChatCompletionRequest) -> StreamingReply:
        """Runs the cascade up to the answering tier before returning, so headers are known."""
        cascade, generation_request = self._prepare(request)
        events = aiter(cascade.stream(generation_request))
        started = await anext(events)
        assert isinstance(started, AnswerStarted)
        tried = [step.tier for step in started.steps_before] + [started.tier]
        headers = {
            "x-request-id": generation_request.request_id,
            "x-tierserve-tier": started.tier,
            "x-tierserve-tiers-tried": ",".join(tried),
            "x-tierserve-reasons": "; ".join(step.reason for step in started.steps_before),
        }
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        body = self._sse(request.model, generation_request.request_id, events, include_usage)
        return StreamingReply(headers=headers, body=body)

    async def _sse(
        self,
        model: str,
        request_id: str,
        events: AsyncIterator[Any],
        include_usage: bool,
    ) -> AsyncIterator[str]:
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
            payload = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(payload)}\n\n"

        yield chunk({"role": "assistant", "content": ""}, None)
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    yield chunk({"content": event.text}, None)
                elif isinstance(event, CascadeFinished):
                    result = event.result
                    metadata = self._metadata(request_id, result).model_dump()
                    yield chunk({}, result.generation.finish_reason, tierserve=metadata)
                    if include_usage:
                        usage = {
                            "id": request_id,
                            "object": "chat.completion.chunk",
                            "created": created,
                            "model": model,
                            "choices": [],
                            "usage": self._usage(result),
                        }
                        yield f"data: {json.dumps(usage)}\n\n"
        except TierserveError as error:
            body = error_body(str(error), error.error_type, error.param, type(error).__name__)
            yield f"data: {json.dumps(body)}\n\n"
        yield "data: [DONE]\n\n"
