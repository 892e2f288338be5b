"""From an OpenAI chat request to what the policy and the engines read."""

from __future__ import annotations

from typing import Any

from tierserve.api.protocol import ChatCompletionRequest, ChatMessageIn
from tierserve.config import GatewayConfig
from tierserve.engine.types import ChatMessage, GenerationRequest, ToolCall
from tierserve.errors import InvalidRequestError
from tierserve.policy.spec import Policy
from tierserve.validate import ToolContract, ValidationContext

__all__ = ["generation_request", "tool_contract", "user_text", "validation_context"]


def user_text(request: ChatCompletionRequest) -> str:
    return "\n".join(m.text() for m in request.messages if m.role == "user")


def _max_tokens(request: ChatCompletionRequest, gateway: GatewayConfig) -> int:
    max_tokens = request.max_completion_tokens or request.max_tokens
    max_tokens = max_tokens or gateway.default_max_tokens
    if max_tokens > gateway.max_tokens_limit:
        raise InvalidRequestError(
            f"max_tokens={max_tokens} exceeds this gateway's limit of {gateway.max_tokens_limit}",
            hint=f"ask for at most {gateway.max_tokens_limit} tokens",
            param="max_tokens",
        )
    if request.min_tokens is not None and request.min_tokens > max_tokens:
        raise InvalidRequestError(
            f"min_tokens={request.min_tokens} exceeds max_tokens={max_tokens}",
            hint=f"ask for at most {max_tokens} tokens as min_tokens, or raise max_tokens",
            param="min_tokens",
        )
    return max_tokens


def generation_request(
    request: ChatCompletionRequest, request_id: str, gateway: GatewayConfig
) -> GenerationRequest:
    """The engine request every step starts from (each step adds its own contract)."""
    return GenerationRequest(
        request_id=request_id,
        messages=tuple(_engine_message(m) for m in request.messages),
        max_tokens=_max_tokens(request, gateway),
        temperature=(
            gateway.default_temperature if request.temperature is None else request.temperature
        ),
        top_p=request.top_p,
        stop=request.stops(),
        seed=request.seed,
        ignore_eos=request.ignore_eos,
        frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty,
        repetition_penalty=request.repetition_penalty,
        top_k=request.top_k,
        min_p=request.min_p,
        min_tokens=request.min_tokens,
        logit_bias=(
            {int(token): bias for token, bias in request.logit_bias.items()}
            if request.logit_bias
            else None
        ),
        top_logprobs=(request.top_logprobs or 0) if request.logprobs else None,
        tools=_offered_tools(request),
    )


def _engine_message(message: ChatMessageIn) -> ChatMessage:
    calls = tuple(
        ToolCall(call.id, call.function.name, call.function.arguments) for call in message.calls()
    )
    role = "system" if message.role == "developer" else message.role
    return ChatMessage(role, message.text(), calls, message.answers_call())


def _offered_tools(request: ChatCompletionRequest) -> tuple[dict[str, Any], ...]:
    """The tools the model is shown: none for tool_choice none, only the named one when the
    caller names one (the model cannot pick another)."""
    if not request.offers_tools():
        return ()
    choice = request.tool_choice_name()
    return tuple(
        tool.model_dump(exclude_none=True)
        for tool in request.tools or ()
        if choice in ("auto", "required") or tool.function.name == choice
    )


def tool_contract(request: ChatCompletionRequest) -> ToolContract | None:
    """What the tool_args check holds calls to; None when the request offers no tools."""
    if not request.tools:
        return None
    return ToolContract(
        parameters={tool.function.name: tool.function.parameters for tool in request.tools},
        choice=request.tool_choice_name(),
        parallel=request.parallel_tool_calls,
    )


def validation_context(request: ChatCompletionRequest, policy: Policy) -> ValidationContext:
    """What the validators read from the request: the user's text, and the system and developer
    messages as the sources an answer must be grounded in."""
    return ValidationContext(
        tools=tool_contract(request),
        input_text=user_text(request),
        sources=[m.text() for m in request.messages if m.role in ("system", "developer")],
        forbidden_phrases=policy.forbidden_phrases,
    )
