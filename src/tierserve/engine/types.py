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
    "TokenLogprob",
    "ToolCall",
]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call a model proposed (or an earlier turn made), as OpenAI shows it."""

    id: str
    name: str
    arguments: str
    """JSON text, as the model wrote it: the gate checks it before a caller sees it."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    """An assistant turn's calls, replayed by the caller."""
    tool_call_id: str | None = None
    """A tool turn: the call it answers."""


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
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    repetition_penalty: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    min_tokens: int | None = None
    logit_bias: dict[int, float] | None = None
    top_logprobs: int | None = None
    """None: the caller did not ask for log-probabilities (only the sampled tokens' values are
    kept, for the gate); N: each token's text and its N likeliest alternatives are returned."""
    tools: tuple[dict[str, Any], ...] = ()
    """OpenAI tool definitions ``{type: function, function: {name, description, parameters}}``
    the tier's chat template shows the model; empty: no tools."""


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token as OpenAI's ``logprobs.content`` shows it."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()
    """The likeliest alternatives at this position, likeliest first."""


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
    logprobs: tuple[TokenLogprob, ...] = ()
    """Each token with its alternatives, when the request asked for ``top_logprobs``."""
    tool_calls: tuple[ToolCall, ...] = ()
    """The calls the tier's tool parser read from the answer; ``text`` is what is left."""
    unreadable_tool_call: bool = False
    """The answer began a tool call the parser could not read (broken JSON, no name)."""
    token_spans: tuple[tuple[int, int], ...] = ()
    """Each generated token's characters in ``text`` as (start, end): what field-level
    confidence maps back to JSON values. Tokens delivered together share their batch's span;
    empty when the engine does not report them or the text was rewritten (tool calls)."""


@dataclass(frozen=True, slots=True)
class GenerationChunk:
    """A piece of a streamed generation; the last one carries the finished Generation."""

    text: str
    final: Generation | None = field(default=None)
    tokens: int = 0
    """How many tokens ``text`` holds (what a client that leaves mid-stream was sent)."""
    logprobs: tuple[TokenLogprob, ...] = ()
    """The tokens of ``text`` with their log-probabilities, when the request asked for them."""


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
