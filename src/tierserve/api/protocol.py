"""OpenAI chat-completions request and response models (the subset tierserve serves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "ChatCompletionRequest",
    "ChatMessageIn",
    "StepMetadata",
    "TierserveMetadata",
]


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
    name: str = Field(default="response", min_length=1, max_length=64)
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
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = Field(
        default=None,
        description="OpenAI request metadata; tierserve reads 'task' (a task-class hint), "
        "'session_id', 'schema' (a registered schema's name) and 'decoding' ('constrained' or "
        "'unconstrained', for a pinned tier only).",
    )

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


class StepMetadata(BaseModel):
    tier: str | None
    model: str | None
    outcome: str
    reason: str
    confidence: float | None
    threshold: float | None
    signals: dict[str, float] = {}
    validations: list[str]
    constrained: bool
    max_tokens: int | None
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    latency_ms: float
    cost_usd: float = 0.0
    error: str | None = None


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
    outcome: str
    """accept, human_review or safe_failure."""
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
    steps: list[StepMetadata]
    cache: str = "off"
    """hit, miss, bypass (Cache-Control: no-cache, or streamed) or off (route not cacheable)."""
    cached_from: str | None = None
    """On a cache hit: the request whose answer is returned."""
    cost_usd: float = 0.0
    """Cost of the steps this request ran, from the tiers' cost model (0 on a cache hit)."""

    def headers(self) -> dict[str, str]:
        return {
            "x-request-id": self.request_id,
            "x-tierserve-policy-version": self.policy_version,
            "x-tierserve-route": self.route,
            "x-tierserve-outcome": self.outcome,
            "x-tierserve-tier": self.tier,
            "x-tierserve-tiers-tried": ",".join(self.tiers_tried),
            "x-tierserve-reasons": "; ".join(self.reasons),
            "x-tierserve-confidence": f"{self.confidence:.4f}",
            "x-tierserve-cache": self.cache,
        }


def error_body(
    message: str, error_type: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
