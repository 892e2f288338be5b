"""Schemas to constrained decoding, through Outlines.

Outlines builds the regex for a JSON schema or a Pydantic model; we bound its numbers (below)
and Outlines' vLLM type adapter turns the regex into the keyword arguments of vLLM's
``StructuredOutputsParams`` (``{"regex": ...}``). vLLM's ``outlines`` backend then compiles the
regex to a token index with ``outlines_core`` and keeps compiled indexes in an LRU cache keyed by
the regex (optionally on disk). The compile step is the expensive one: a
bounded-string schema over Qwen's 151k-token vocabulary takes tens of seconds on a CPU, which is
why model servers compile the policy's named schemas while warming up.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from pydantic import BaseModel

__all__ = [
    "MAX_FRACTION_DIGITS",
    "MAX_INTEGER_DIGITS",
    "compile_check",
    "structured_outputs_args",
]

# Outlines bounds strings (maxLength) and arrays (maxItems) but not the digits of a number: a
# small model once wrote `"amount": 1.1111...` until max_tokens, which no validator can repair.
# outlines_core's maxDigitsInteger keyword is no way out: it makes the leading digit group
# `[1-9][0-9]{1,n}`, which rules out single-digit values such as 9.99.
MAX_INTEGER_DIGITS = 12
MAX_FRACTION_DIGITS = 6
_UNBOUNDED_NUMBER = r"((-)?(0|[1-9][0-9]*))(\.[0-9]+)?([eE][+-][0-9]+)?"
_UNBOUNDED_INTEGER = r"(-)?(0|[1-9][0-9]*)"
_BOUNDED_INTEGER = rf"(-)?(0|[1-9][0-9]{{0,{MAX_INTEGER_DIGITS - 1}}})"
_BOUNDED_NUMBER = rf"({_BOUNDED_INTEGER})(\.[0-9]{{1,{MAX_FRACTION_DIGITS}}})?"


def structured_outputs_args(output_type: dict[str, Any] | type[BaseModel]) -> dict[str, Any]:
    """Keyword arguments for ``vllm.sampling_params.StructuredOutputsParams``."""
    from outlines.models.vllm_offline import VLLMOfflineTypeAdapter
    from outlines.types import Regex

    schema = output_type if isinstance(output_type, dict) else output_type.model_json_schema()
    args: dict[str, Any] = VLLMOfflineTypeAdapter().format_output_type(Regex(compile_check(schema)))
    return args


def compile_check(schema: dict[str, Any]) -> str:
    """The regex Outlines builds for ``schema``, with numbers bounded.

    Raises ``ValueError`` naming what Outlines cannot express, so a policy is refused at load
    time rather than on a request."""
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
    # Number first: the unbounded integer pattern is a part of it.
    return regex.replace(_UNBOUNDED_NUMBER, _BOUNDED_NUMBER).replace(
        _UNBOUNDED_INTEGER, _BOUNDED_INTEGER
    )
