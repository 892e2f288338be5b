"""One Ray Serve deployment per tier, wrapping a vLLM engine.

The engine class is a parameter (``engine_cls``, as in Ray Serve LLM's
``LLMServer(engine_cls=...)``): vLLM's by default, a scripted one in unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from tierserve.config import TierConfig
from tierserve.engine.resolve import ResolvedTier, resolve_tier
from tierserve.engine.types import (
    ChatMessage,
    Generation,
    GenerationChunk,
    GenerationRequest,
    Refusal,
)
from tierserve.errors import TierserveError
from tierserve.hardware import detect_host
from tierserve.serve.stream_batching import batched_chunks

__all__ = ["EngineFactory", "ModelServer", "TierEngine", "TierStatus"]

_log = logging.getLogger("ray.serve")


class TierEngine(Protocol):
    """What a tier's replica needs of its engine: the Engine protocol, plus bookkeeping."""

    in_flight: set[str]
    aborted: int

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]: ...

    async def healthy(self) -> None: ...

    def shutdown(self) -> None: ...


EngineFactory = Callable[[TierConfig, ResolvedTier], TierEngine]
"""An engine class: ``VLLMEngine`` by default, a scripted engine in unit tests."""


@dataclass(frozen=True, slots=True)
class TierStatus:
    name: str
    model_version: str
    quantization: str
    dtype: str
    choice: str
    in_flight: int
    aborted_total: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ModelServer:
    """Deployment body; ``serve.deployment`` is applied in :mod:`tierserve.serve.app`."""

    async def __init__(  # type: ignore[misc]
        self,
        tier: TierConfig,
        model_cache_dir: str,
        warm_schemas: Sequence[dict[str, Any]] = (),
        engine_cls: EngineFactory | None = None,
    ) -> None:
        if engine_cls is None:
            from tierserve.engine.vllm_engine import VLLMEngine
            from tierserve.serve.engine_processes import mark_engine_owner, start_guard

            engine_cls = VLLMEngine
            # vLLM's engine runs in processes this replica starts; they end when it ends,
            # however it ends (a SIGKILL runs no shutdown).
            self._engine_guard = start_guard(mark_engine_owner())
        self._resolved: ResolvedTier = resolve_tier(tier, detect_host(), Path(model_cache_dir))
        self._engine = engine_cls(tier, self._resolved)
        self._stream_batch_interval_s = tier.stream_batch_interval_ms / 1000
        # The first generation of a fresh engine is many times slower (kernel and allocator
        # warm-up); pay it before the replica reports ready, not on a user's request.
        warm_up = GenerationRequest(
            request_id=f"warm-up-{tier.name}",
            messages=(ChatMessage("user", "Hello"),),
            max_tokens=2,
        )
        await self._engine.generate(warm_up)
        # Compiling a schema into a token index is paid once per engine (vLLM caches it);
        # pay it here for the policy's named schemas rather than on the first caller's request.
        await asyncio.gather(
            *(
                self._engine.generate(
                    GenerationRequest(
                        request_id=f"warm-up-{tier.name}-schema-{index}",
                        messages=(ChatMessage("user", "{}"),),
                        max_tokens=1,
                        json_schema=schema,
                    )
                )
                for index, schema in enumerate(warm_schemas)
            )
        )

    def _refused(self, request: GenerationRequest, error: TierserveError) -> Refusal:
        """One log line, not a traceback: the caller's mistake (or a typed tier error the
        gateway maps to a status) is not a failure of this replica."""
        level = logging.WARNING if error.http_status >= 500 else logging.INFO
        _log.log(level, "%s refused: %s %s", request.request_id, error.http_status, error.message)
        return Refusal(error)

    async def generate(self, request: GenerationRequest) -> Generation | Refusal:
        try:
            return await self._engine.generate(request)
        except TierserveError as error:
            return self._refused(request, error)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk | Refusal]:
        batches = batched_chunks(
            self._engine.stream(request), interval_s=self._stream_batch_interval_s
        )
        try:
            async for batch in batches:
                yield batch
        except TierserveError as error:
            yield self._refused(request, error)

    async def status(self) -> TierStatus:
        resolved = self._resolved
        return TierStatus(
            name=resolved.name,
            model_version=resolved.model_version,
            quantization=resolved.quantization,
            dtype=resolved.dtype,
            choice=resolved.choice,
            in_flight=len(self._engine.in_flight),
            aborted_total=self._engine.aborted,
        )

    async def check_health(self) -> None:
        """Called by Serve; a dead engine marks the replica unhealthy so Serve restarts it."""
        await asyncio.wait_for(self._engine.healthy(), timeout=30)

    def __del__(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown()
