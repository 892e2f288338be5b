"""The tool-call check: a proposed call names a tool the caller offered, and its arguments are
JSON that the tool's ``parameters`` schema accepts.

No client checks this before running the call, so an invalid call from a cheap tier would
reach the app's code. Here it is an answer that falls short, and the ladder escalates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["ProposedCall", "ToolContract", "check_tool_args"]


@dataclass(frozen=True, slots=True)
class ProposedCall:
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolContract:
    """What the caller offered and required."""

    parameters: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    """Each tool's name and its arguments' JSON schema (None: any object)."""
    choice: str = "auto"
    """``auto`` (a call or a text answer), ``required`` (some call), ``none``, or the name of
    the one tool that must be called."""
    parallel: bool = True
    """False: at most one call (``parallel_tool_calls: false``)."""


def _argument_problem(call: ProposedCall, schema: dict[str, Any] | None) -> str | None:
    try:
        arguments = json.loads(call.arguments)
    except json.JSONDecodeError as error:
        return f"{call.name}: arguments not JSON at char {error.pos}"
    if not isinstance(arguments, dict):
        return f"{call.name}: arguments not an object"
    if schema is None:
        return None
    errors = sorted(
        Draft202012Validator(
            schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).iter_errors(arguments),
        key=str,
    )
    if not errors:
        return None
    first = errors[0]
    where = "/" + "/".join(str(p) for p in first.absolute_path)
    return f"{call.name}: {where} {first.validator}"


def check_tool_args(
    calls: Sequence[ProposedCall], unreadable: bool, contract: ToolContract
) -> tuple[bool, str]:
    """(passed, detail). ``unreadable``: the answer began a call the tier's parser could not
    read. The detail names the tool and the schema keyword, never the argument values."""
    if unreadable:
        return False, "unreadable call"
    if contract.choice == "none":
        return (False, "a call where tool_choice is none") if calls else (True, "")
    if not calls:
        if contract.choice == "auto":
            return True, "no call"
        return False, "no call"
    if not contract.parallel and len(calls) > 1:
        return False, f"{len(calls)} calls, parallel_tool_calls is false"
    for call in calls:
        if call.name not in contract.parameters:
            return False, "a tool that was not offered"
        if contract.choice not in ("auto", "required") and call.name != contract.choice:
            return False, f"{call.name} called, {contract.choice} required"
        problem = _argument_problem(call, contract.parameters[call.name])
        if problem is not None:
            return False, problem[:160]
    return True, ",".join(call.name for call in calls)[:160]
