"""OpenAI chat-completions request, response and stream-chunk models (the subset tierserve
serves), with the ``tierserve`` extension that explains each decision, and its headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from tierserve.engine.types import TokenLogprob, ToolCall
from tierserve.errors import TierserveError
from tierserve.observe.decision_record import CacheStatus, DecisionRecord
from tierserve.policy.classify import TaskSource
from tierserve.policy.reason import Disclosure
from tierserve.policy.step import Outcome, Step

__all__ = [
    "CallerContext",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessageIn",
    "ChoiceLogprobs",
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


_CONTENT_PARTS = frozenset({"image_url", "input_audio", "file", "refusal"})


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, part: Any) -> Any:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind is not None and kind != "text":
            named = f"of type {kind!r}" if kind in _CONTENT_PARTS else "that is not text"
            raise ValueError(
                f"a content part {named}: the tiers are text-only models; send text parts "
                "(or a string) only"
            )
        return part


Content = str | list[TextPart]


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(description="JSON text, as the model wrote it.")


class ToolCallIn(BaseModel):
    """A call of an earlier assistant turn, as the caller replays it."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=128)
    type: Literal["function"] = "function"
    function: FunctionCallIn


class _Message(BaseModel):
    """OpenAI fields of a message that tierserve does not read (``name``, ``refusal``,
    ``annotations``) are accepted and not shown to the model: clients replay the assistant
    messages they received, with every field."""

    model_config = ConfigDict(extra="ignore")
    content: Content | None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def calls(self) -> list[ToolCallIn]:
        return []

    def answers_call(self) -> str | None:
        return None


class SystemMessageIn(_Message):
    role: Literal["system", "developer"]
    content: Content


class UserMessageIn(_Message):
    role: Literal["user"]
    content: Content


class AssistantMessageIn(_Message):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCallIn] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> AssistantMessageIn:
        if self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        return self

    def calls(self) -> list[ToolCallIn]:
        return self.tool_calls or []


class ToolMessageIn(_Message):
    role: Literal["tool"]
    content: Content
    tool_call_id: str = Field(min_length=1, max_length=128, description="The call it answers.")

    def answers_call(self) -> str | None:
        return self.tool_call_id


ChatMessageIn = Annotated[
    SystemMessageIn | UserMessageIn | AssistantMessageIn | ToolMessageIn,
    Field(discriminator="role"),
]
"""One message, its fields by role (as OpenAI's schema has them)."""


class FunctionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="As OpenAI: letters, digits, '_' and '-', at most 64 characters.",
    )
    description: str | None = None
    parameters: dict[str, Any] | None = Field(
        default=None, description="The arguments' JSON schema; the gate checks calls with it."
    )
    strict: bool | None = None


class ToolIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: NamedFunction


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


_REFUSED: dict[str, str] = {
    "audio": "the tiers are text-only models; drop audio",
    "functions": "functions is OpenAI's deprecated form; send tools instead",
    "function_call": "function_call is OpenAI's deprecated form; send tool_choice instead",
    "prediction": "predicted outputs are not supported; drop prediction",
    "web_search_options": "tierserve has no web search; drop web_search_options",
    "reasoning_effort": "the tiers are not reasoning models; drop reasoning_effort",
    "verbosity": "the tiers have no verbosity control; drop verbosity, or ask in the prompt",
    "prompt_cache_key": "each tier caches prompt prefixes by itself; drop prompt_cache_key",
    "prompt_cache_retention": "each tier caches prompt prefixes by itself; drop it",
    "prompt_cache_options": "each tier caches prompt prefixes by itself; drop it",
    "moderation": "the policy's safety validator checks every answer; drop moderation",
}
"""OpenAI parameters tierserve refuses, with the fix (a value that asks for nothing passes)."""

_HARMLESS: dict[str, tuple[Any, ...]] = {
    "modalities": (["text"],),
    "store": (False,),
    "service_tier": ("auto", "default"),
}
"""Refused parameters' values that ask for what tierserve does anyway."""


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completions body. Every parameter is either served or refused with a
    400 naming it: unknown fields are refused too (as OpenAI does), so no setting a caller
    relies on is dropped without a word. vLLM's sampling extras (``top_k``, ``min_p``,
    ``repetition_penalty``, ``min_tokens``, ``ignore_eos``) are served as vLLM serves them."""

    model_config = ConfigDict(extra="forbid")

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
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = Field(
        default=None,
        max_length=300,
        description="Token id (as a string) to a bias from -100 to 100, as OpenAI's. Token ids "
        "are each tier's own: a bias means the same token only on tiers sharing a tokenizer.",
    )
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    top_k: int | None = Field(
        default=None, ge=-1, description="vLLM's extension: sample from the k likeliest tokens."
    )
    min_p: float | None = Field(
        default=None, ge=0.0, le=1.0, description="vLLM's extension: minimum token probability."
    )
    repetition_penalty: float | None = Field(
        default=None, gt=0.0, le=10.0, description="vLLM's extension: >1 discourages repeats."
    )
    min_tokens: int | None = Field(
        default=None, ge=0, description="vLLM's extension: generate at least this many tokens."
    )
    user: str | None = Field(
        default=None,
        max_length=256,
        description="The app's end-user id; recorded as a hash in the decision record.",
    )
    safety_identifier: str | None = Field(
        default=None,
        max_length=256,
        description="OpenAI's newer name for `user`; recorded the same way.",
    )
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
    # Known OpenAI parameters refused unless their value asks for nothing; left out of the
    # OpenAPI schema (docs/api.md's parameter table lists them).
    audio: SkipJsonSchema[Any] = None
    functions: SkipJsonSchema[Any] = None
    function_call: SkipJsonSchema[Any] = None
    prediction: SkipJsonSchema[Any] = None
    web_search_options: SkipJsonSchema[Any] = None
    reasoning_effort: SkipJsonSchema[Any] = None
    verbosity: SkipJsonSchema[Any] = None
    prompt_cache_key: SkipJsonSchema[Any] = None
    prompt_cache_retention: SkipJsonSchema[Any] = None
    prompt_cache_options: SkipJsonSchema[Any] = None
    moderation: SkipJsonSchema[Any] = None
    modalities: SkipJsonSchema[Any] = None
    store: SkipJsonSchema[Any] = None
    service_tier: SkipJsonSchema[Any] = None

    @field_validator(*_REFUSED, *_HARMLESS, mode="before")
    @classmethod
    def _refused(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        if value is None or value in _HARMLESS.get(name, ()):
            return value
        if value == [] and name in ("tools", "functions"):
            return value
        fix = _REFUSED.get(name) or (
            f"tierserve serves {name}={_HARMLESS[name][0]!r} only; drop {name} or send that"
        )
        raise ValueError(f"not supported: {fix}")

    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool = True

    @model_validator(mode="after")
    def _top_logprobs_need_logprobs(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true; set it, or drop top_logprobs")
        return self

    @model_validator(mode="after")
    def _tool_choice_among_tools(self) -> ChatCompletionRequest:
        names = [tool.function.name for tool in self.tools or ()]
        if len(names) != len(set(names)):
            raise ValueError("two tools share a name; give each tool its own name")
        if isinstance(self.tool_choice, NamedToolChoice):
            if self.tool_choice.function.name not in names:
                raise ValueError(
                    "tool_choice names a function that is not among tools; add it to tools "
                    "or choose one of them"
                )
        elif self.tool_choice == "required" and not names:
            raise ValueError("tool_choice 'required' needs tools; send tools or drop it")
        return self

    def tool_choice_name(self) -> str:
        """``auto`` (the default with tools), ``none``, ``required`` or the named function."""
        if isinstance(self.tool_choice, NamedToolChoice):
            return self.tool_choice.function.name
        return self.tool_choice or "auto"

    def offers_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice_name() != "none"

    @field_validator("logit_bias")
    @classmethod
    def _biases_by_token_id(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if not token.isdigit():
                raise ValueError('keys are token ids written as strings, e.g. "1234"')
            if not -100.0 <= bias <= 100.0:
                raise ValueError(f"the bias of token {token} must be from -100 to 100")
        return value

    def end_user(self) -> str | None:
        return self.user or self.safety_identifier

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
    task_source: TaskSource | None = None
    """How the task class was found: the caller's hint, a keyword rule, the classifier."""
    kind: str | None = None
    """The question kind the plan gave the request, if any."""
    skipped_tiers: list[str] = []
    """Tiers of the route this request did not climb (eligibility, a session floor, a start
    router, complexity); the plan's reason codes say why."""
    risk: str
    plan: list[str]
    """Reason codes of the plan, rendered for people: eligibility, task, risk, route, skipped
    tiers, summary. The facts they render are the typed fields beside them."""
    outcome: Outcome
    tier: str | None
    """The tier whose answer is returned; null when none is (``outcome`` says why)."""
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
    uncertain_fields: list[str] = []
    """Fields of the returned JSON (or of the reviewer's draft) still in doubt: under the
    step's field threshold, named by a failed check, or disputed; show them for review."""

    @classmethod
    def of(
        cls, record: DecisionRecord, confidence_quantile: float, disclosure: Disclosure
    ) -> TierserveMetadata:
        """``disclosure``: how ``reasons`` (and the headers) show the steps' failed checks."""
        return cls(
            request_id=record.request_id,
            policy_version=record.policy_version,
            tenant=record.tenant,
            route=record.route,
            output_schema=record.output_schema,
            task=record.task,
            task_source=record.task_source,
            kind=record.kind,
            skipped_tiers=list(record.skipped_tiers),
            risk=record.risk,
            plan=record.plan,
            outcome=record.outcome,
            tier=record.answered_by,
            tiers_tried=[step.tier for step in record.steps if step.tier],
            reasons=[step.disclosed(disclosure) for step in record.steps],
            confidence=round(record.confidence, 4),
            confidence_quantile=confidence_quantile,
            models=record.models,
            review_id=record.review_id,
            steps=record.steps,
            cache=record.cache,
            cached_from=record.cached_from,
            cost_usd=record.cost_usd,
            uncertain_fields=list(record.uncertain_fields),
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
    tier: str | None,
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
        "x-tierserve-tiers-tried": ",".join(tiers_tried),
        "x-tierserve-reasons": "; ".join(reasons),
    }
    if tier is not None:  # none when no tier's answer is returned: the outcome says why
        headers["x-tierserve-tier"] = tier
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


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut

    @classmethod
    def of(cls, call: ToolCall, **more: Any) -> Self:
        function = FunctionCallOut(name=call.name, arguments=call.arguments)
        return cls(id=call.id, function=function, **more)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    """None when the answer is tool calls only (as OpenAI sends it)."""
    tool_calls: list[ToolCallOut] | None = None

    @classmethod
    def of(cls, text: str, calls: Sequence[ToolCall]) -> AssistantMessage:
        if not calls:
            return cls(content=text)
        return cls(content=text or None, tool_calls=[ToolCallOut.of(c) for c in calls])


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int]

    @classmethod
    def of(cls, token: str, logprob: float, **more: Any) -> Self:
        return cls(token=token, logprob=logprob, bytes=list(token.encode("utf-8")), **more)


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """OpenAI's ``choices[].logprobs``: the answering tier's tokens. Only for an answer a tier
    wrote; ``null`` for a human-review or safe-failure message."""

    content: list[TokenLogprobOut]
    refusal: None = None

    @classmethod
    def of(cls, tokens: Sequence[TokenLogprob]) -> ChoiceLogprobs:
        return cls(
            content=[
                TokenLogprobOut.of(
                    t.token,
                    t.logprob,
                    top_logprobs=[TopLogprob.of(token, value) for token, value in t.top],
                )
                for t in tokens
            ]
        )


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: ChoiceLogprobs | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    tierserve: TierserveMetadata


class DeltaToolCall(ToolCallOut):
    """A whole call in one delta: the gate checked it before any of it was sent."""

    index: int


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None

    @classmethod
    def calls(cls, calls: Sequence[ToolCall], role: Literal["assistant"] | None) -> Delta:
        return cls(
            role=role,
            tool_calls=[DeltaToolCall.of(call, index=i) for i, call in enumerate(calls)],
        )


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
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
