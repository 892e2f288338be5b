"""Schemas to constrained decoding, through Outlines.

Outlines' vLLM type adapter turns a JSON schema or a Pydantic model into the keyword arguments
of vLLM's ``StructuredOutputsParams`` (``{"json": {...}}``); vLLM's ``outlines`` backend then
compiles the schema to a regex and the regex to a token index with ``outlines_core``, and keeps
compiled indexes in an LRU cache (optionally on disk). The compile step is the expensive one: a
bounded-string schema over Qwen's 151k-token vocabulary takes tens of seconds on a CPU, which is
why model servers compile the policy's named schemas while warming up.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

__all__ = ["compile_check", "structured_outputs_args"]


def structured_outputs_args(output_type: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """Keyword arguments for ``vllm.sampling_params.StructuredOutputsParams``."""
    from outlines.models.vllm_offline import VLLMOfflineTypeAdapter
    from outlines.types import JsonSchema

    args: dict[str, Any] = VLLMOfflineTypeAdapter().format_output_type(JsonSchema(output_type))
    return args


def compile_check(schema: dict[str, Any]) -> str:
    """The regex Outlines builds for ``schema``; raises ``ValueError`` naming what it cannot
    express, so a policy is refused at load time rather than on a request."""
    return _regex_for(json.dumps(schema))


@functools.lru_cache(maxsize=256)
def _regex_for(schema_json: str) -> str:
    # Cached: clients resend the same response_format schema with every request.
    from outlines_core.json_schema import build_regex_from_schema

    try:
        regex: str = build_regex_from_schema(schema_json)
    except Exception as error:  # outlines_core raises plain exceptions with the reason
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"Outlines cannot constrain to this schema: {reason}") from None
    return regex
