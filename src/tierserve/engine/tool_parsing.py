"""Tool calls inside a tier: tools shown to the model through its chat template, calls read
back from its answer by vLLM's tool parser for the model family (``tool_call_parser``).

Imported only inside model-server replicas (vLLM is imported when a tier is built).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tierserve.config import BUILTIN_TOOL_TEMPLATES, TierConfig
from tierserve.engine.types import ChatMessage, GenerationRequest, ToolCall
from tierserve.errors import ConfigError, InvalidRequestError

__all__ = ["ReadCalls", "ToolCalling", "bare_call", "template_message"]


def template_message(message: ChatMessage) -> dict[str, Any]:
    """A message as chat templates read it: a replayed call's arguments as an object (the
    templates write them with ``tojson``), a tool turn with the call it answers."""
    rendered: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        rendered["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": _as_object(call.arguments)},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        rendered["tool_call_id"] = message.tool_call_id
    return rendered


def _as_object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def _template_text(name: str | None) -> str | None:
    if name is None:
        return None
    if name in BUILTIN_TOOL_TEMPLATES:
        return resources.files("tierserve.engine").joinpath(f"templates/{name}.jinja").read_text()
    return Path(name).read_text()


@dataclass(frozen=True, slots=True)
class ReadCalls:
    calls: tuple[ToolCall, ...]
    content: str
    """The answer without its calls."""
    unreadable: bool
    """The answer began a call (the parser's start tag) that the parser could not read."""


class ToolCalling:
    def __init__(self, parser: Any, template: str | None, model: str) -> None:
        self._parser = parser
        self._template = template
        self._model = model

    @classmethod
    def of(cls, tier: TierConfig, tokenizer: Any, model: str) -> ToolCalling:
        parser = None
        if tier.tool_call_parser is not None:
            from vllm.tool_parsers import ToolParserManager

            known = ToolParserManager.list_registered()
            if tier.tool_call_parser not in known:
                raise ConfigError(
                    f"tier {tier.name!r}: tool_call_parser {tier.tool_call_parser!r} is not one "
                    f"of vLLM's tool parsers",
                    hint=f"use one of {known}",
                )
            parser = ToolParserManager.get_tool_parser(tier.tool_call_parser)(tokenizer)
            # The parsers log a traceback for every call they cannot read; here that is an
            # answer the gate refuses (tool_args=fail(unreadable call)), not a replica error.
            logging.getLogger(type(parser).__module__).setLevel(logging.CRITICAL)
        return cls(parser, _template_text(tier.tool_chat_template), model)

    def template_options(self, tier: str, request: GenerationRequest) -> dict[str, Any]:
        """What ``apply_chat_template`` needs beyond the messages: the tools offered, and the
        tool template for a request that offers tools or replays tool turns."""
        options: dict[str, Any] = {}
        if request.tools:
            if self._parser is None:
                raise InvalidRequestError(
                    f"tier {tier!r} cannot call tools (no tool_call_parser is configured)",
                    hint="use a tier with a tool_call_parser, or drop tools",
                    param="tools",
                )
            options["tools"] = list(request.tools)
        replays = any(m.tool_calls or m.role == "tool" for m in request.messages)
        if self._template is not None and (request.tools or replays):
            options["chat_template"] = self._template
        return options

    def read(self, text: str, request: GenerationRequest) -> ReadCalls:
        from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

        assert self._parser is not None  # template_options refused the request otherwise
        asked = ChatCompletionRequest.model_validate(
            {
                "model": self._model,
                "messages": [{"role": "user", "content": ""}],
                "tools": list(request.tools),
            }
        )
        found = self._parser.extract_tool_calls(text, asked)
        calls = tuple(
            ToolCall(call.id, call.function.name, call.function.arguments)
            for call in (found.tool_calls if found.tools_called else ())
        )
        if calls:
            return ReadCalls(calls, (found.content or "").strip(), unreadable=False)
        bare = bare_call(text)
        if bare is not None:
            return ReadCalls((bare,), "", unreadable=False)
        start = getattr(self._parser, "tool_call_start_token", None)
        began = (isinstance(start, str) and start in text) or _BEGINS_CALL.match(text) is not None
        return ReadCalls((), text if began else (found.content or ""), unreadable=began)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)
_BEGINS_CALL = re.compile(r'^\s*(?:```(?:json)?\s*)?\{\s*"name"\s*:')


def bare_call(text: str) -> ToolCall | None:
    """A whole answer that is one call's JSON without the parser's tags (Qwen2.5-Coder writes
    Hermes calls so): ``{"name": ..., "arguments": {...}}``, fenced or not. Whether the tool
    was offered is the gate's to judge."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict) or set(value) != {"name", "arguments"}:
        return None
    if not isinstance(value["name"], str):
        return None
    arguments = value["arguments"]
    return ToolCall(
        f"call_{uuid.uuid4().hex[:24]}",
        value["name"],
        arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False),
    )
