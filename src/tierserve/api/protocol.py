"""OpenAI chat-completions request, response and stream-chunk models (the subset tierserve
serves), with the ``tierserve`` extension that explains each decision, and its headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from tierserve.errors import TierserveError
from tierserve.observe.record import CacheStatus, DecisionRecord
from tierserve.policy.step import Outcome, Step

__all__ = [
    "CallerContext",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ChunkChoice",
    "Delta",
    "ErrorBody",
    "StreamingReply",
    "TierserveMetadata",
    "Usage",
    "error_body",
    "tierserve_headers",
]


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # vLLM's seeds are 64-bit signed integers


def _lone_surrogate_at(body: Any) -> str | None:
    """Where a string (or key) in the JSON body holds a lone UTF-16 surrogate (``"\\ud800"``):
    valid JSON, but not Unicode text, and every tokenizer refuses it."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where or "body"
        elif isinstance(value, dict):
            for key, child in value.items():
                printable = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
                path = f"{where}.{printable}" if where else printable
                stack.append((path, key))
                stack.append((path, child))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}", child) for i, child in enumerate(value))
    return None


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(
        default="response",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="As OpenAI: letters, digits, '_' and '-', at most 64 characters.",
    )
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="The caller's own schema; omit it to use the schema registered as `name`.",
    )
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_needed(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError(
                "type 'json_schema' needs a json_schema: {name, schema}, or {name} alone to use "
                "a schema registered on this gateway"
            )
        return self

    def own_schema(self) -> dict[str, Any] | None:
        """The schema the caller sent (json_object counts as ``{"type": "object"}``)."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.schema_
        return None

    def registered_name(self) -> str | None:
        """The registered schema named by a json_schema format that carries no schema."""
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.name if self.json_schema.schema_ is None else None
        return None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """Unknown OpenAI fields are ignored (clients send many); unsupported values are refused."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    n: int = Field(default=1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=_INT64_MIN, le=_INT64_MAX)
    user: str | None = None
    ignore_eos: bool = Field(
        default=False,
        description="vLLM's extension: generate up to the token limit even past the end of "
        "the answer; benchmark clients (`vllm bench serve --ignore-eos`) use it to fix output "
        "lengths.",
    )
    metadata: dict[str, str] | None = Field(
        default=None,
        description="OpenAI request metadata; tierserve reads 'task' (a task-class hint), "
        "'session_id', 'schema' (a registered schema's name) and 'decoding' ('constrained' or "
        "'unconstrained', for a pinned tier only).",
    )

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, body: Any) -> Any:
        where = _lone_surrogate_at(body)
        if where is not None:
            raise ValueError(
                f"{where} holds a lone UTF-16 surrogate escape (such as \\ud800), which is not "
                "Unicode text; encode the text as UTF-8 (pair surrogates, or drop them)"
            )
        return body

    @field_validator("stop")
    @classmethod
    def _stops_not_empty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if value == "" or (isinstance(value, list) and "" in value):
            raise ValueError("a stop sequence may not be empty; drop it or give its text")
        return value

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported; send several requests for several answers")
        return value

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, value: list[ChatMessageIn]) -> list[ChatMessageIn]:
        if not any(m.role == "user" for m in value):
            raise ValueError("messages must contain at least one message with role 'user'")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)


class TierserveMetadata(BaseModel):
    """The ``tierserve`` extension field of every response: how the answer was chosen."""

    request_id: str
    policy_version: str
    tenant: str
    route: str
    output_schema: str | None = None
    """The schema the answer is held to: a registered name, or the caller's format name."""
    task: str
    risk: str
    plan: list[str]
    """Reason codes of the plan: eligibility, task, risk, route, skipped tiers, summary."""
    outcome: Outcome
    tier: str
    """The tier that answered, or the outcome when no tier's answer was accepted."""
    tiers_tried: list[str]
    reasons: list[str]
    """One reason code per step."""
    confidence: float
    confidence_quantile: float
    models: dict[str, str]
    """Model version used by each tier tried."""
    review_id: str | None = None
    steps: list[Step]
    """Every step as the decision log records it (the same type)."""
    cache: CacheStatus = "off"
    """hit, miss, bypass (Cache-Control: no-cache, streamed, or a caller without an API key:
    anonymous callers share no answers) or off (route not cacheable)."""
    cached_from: str | None = None
    """On a cache hit: the request whose answer is returned."""
    cost_usd: float = 0.0
    """Cost of the steps this request ran, from the tiers' cost model (0 on a cache hit)."""

    @classmethod
    def of(cls, record: DecisionRecord, confidence_quantile: float) -> TierserveMetadata:
        return cls(
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
            confidence_quantile=confidence_quantile,
            models=record.models,
            review_id=record.review_id,
            steps=record.steps,
            cache=record.cache,
            cached_from=record.cached_from,
            cost_usd=record.cost_usd,
        )

    def headers(self) -> dict[str, str]:
        return tierserve_headers(
            request_id=self.request_id,
            policy_version=self.policy_version,
            route=self.route,
            tier=self.tier,
            tiers_tried=self.tiers_tried,
            reasons=self.reasons,
            outcome=self.outcome,
            confidence=self.confidence,
            cache=self.cache,
        )


def tierserve_headers(
    *,
    request_id: str,
    policy_version: str,
    route: str,
    tier: str,
    tiers_tried: Sequence[str],
    reasons: Sequence[str],
    outcome: str | None = None,
    confidence: float | None = None,
    cache: str | None = None,
) -> dict[str, str]:
    """The response headers that explain a decision. A stream sends them before its answer,
    when the outcome, confidence and cache status are not known yet."""
    headers = {
        # Not x-request-id: Ray Serve appends its own X-Request-ID to every response.
        "x-tierserve-request-id": request_id,
        "x-tierserve-policy-version": policy_version,
        "x-tierserve-route": route,
        "x-tierserve-tier": tier,
        "x-tierserve-tiers-tried": ",".join(tiers_tried),
        "x-tierserve-reasons": "; ".join(reasons),
    }
    if outcome is not None:
        headers["x-tierserve-outcome"] = outcome
    if confidence is not None:
        headers["x-tierserve-confidence"] = f"{confidence:.4f}"
    if cache is not None:
        headers["x-tierserve-cache"] = cache
    return {name: _header_safe(value) for name, value in headers.items()}


_HEADER_VALUE_LIMIT = 2_048


def _header_safe(value: str) -> str:
    """Printable ASCII only: reasons can quote a caller's schema keys or an answer's values,
    and a header must be Latin-1 without line breaks (else the reply fails after its record
    was committed)."""
    ascii_only = value.encode("ascii", "backslashreplace").decode("ascii")
    printable = "".join(c if " " <= c <= "~" else " " for c in ascii_only)
    if len(printable) > _HEADER_VALUE_LIMIT:
        return printable[: _HEADER_VALUE_LIMIT - 3] + "..."
    return printable


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, record: DecisionRecord) -> Usage:
        # Usage counts every tier tried: the escalated attempts were real work too.
        return cls(
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            total_tokens=record.prompt_tokens + record.completion_tokens,
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    tierserve: TierserveMetadata


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: str | None = None

    @field_serializer("delta")
    def _only_what_changed(self, delta: Delta) -> dict[str, Any]:
        return delta.model_dump(exclude_none=True)


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    """Only in the last chunk, when the caller asked for stream_options.include_usage."""
    tierserve: TierserveMetadata | None = None
    """Only in the chunk that carries the finish_reason."""

    @model_serializer(mode="wrap")
    def _without_absent_extensions(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        for key in ("usage", "tierserve"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


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
    chunks: AsyncIterator[ChatCompletionChunk]
    """Ends with the chunk carrying the finish reason and the committed decision (and usage,
    when asked for); a decision that cannot be committed raises instead of that chunk."""


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """OpenAI's error shape; a stream that fails after its headers ends with one as an event."""

    error: ErrorDetail

    @classmethod
    def of(cls, error: TierserveError) -> ErrorBody:
        detail = ErrorDetail(
            message=str(error), type=error.error_type, param=error.param, code=error.code
        )
        return cls(error=detail)


def error_body(
    message: str, error_type: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return ErrorBody(
        error=ErrorDetail(message=message, type=error_type, param=param, code=code)
    ).model_dump()
