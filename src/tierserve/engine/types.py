"""Plain data crossing the engine seam (picklable: it travels between Ray Serve replicas)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "ChatMessage",
    "Engine",
    "Generation",
    "GenerationChunk",
    "GenerationRequest",
    "Refusal",
]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    """When set, decoding is constrained to JSON matching this schema."""
    ignore_eos: bool = False


@dataclass(frozen=True, slots=True)
class Generation:
    """A finished generation from one tier."""

    tier: str
    model: str
    """Model version served by the tier (upstream name + format)."""
    text: str
    token_logprobs: tuple[float, ...]
    """Log-probability of each generated token, in order."""
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    ttft_s: float
    latency_s: float


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """A piece of a streamed generation; the last one carries the finished Generation."""

    text: str
    final: Generation | None = field(default=None)
    tokens: int = 0
    """How many tokens ``text`` holds (what a client that leaves mid-stream was sent)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A tier's typed error, returned across the replica boundary rather than raised: Ray
    Serve logs every exception a replica raises as a failed request with its traceback, and a
    request the caller got wrong is not a replica failure."""

    error: Exception


class Engine(Protocol):
    """What the cascade needs from a tier. The vLLM engine, Serve handles and fakes fit it."""

    async def generate(self, request: GenerationRequest) -> Generation: ...

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]: ...
