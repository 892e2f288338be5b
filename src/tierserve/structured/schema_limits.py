"""Is a caller's JSON schema small and regular enough to compile into a grammar?

Checked before ``jsonschema`` or Outlines see the schema: both recurse over it (a schema nested
150 levels deep raised ``RecursionError``), and the grammar compile that follows grows with
properties, enum values and repeat counts. The walk here is iterative and linear in the size of
the schema, and each refusal names the limit and where in the schema it was broken.
"""

from __future__ import annotations

import json
import re._parser as regex_parser  # type: ignore[import-not-found]  # stdlib sre_parse, no stub
from collections.abc import Iterator
from typing import Any

from tierserve.errors import InvalidRequestError
from tierserve.limits import SchemaLimits

__all__ = ["check_schema_limits"]

_PARAM = "response_format.json_schema.schema"
_LENGTH_KEYWORDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties")
_OPS = regex_parser  # constants live in the parser's namespace (re._constants)
_LOOKAROUND = {_OPS.ASSERT, _OPS.ASSERT_NOT}
_BACKREFERENCE = {_OPS.GROUPREF, _OPS.GROUPREF_EXISTS}
_REPEATS = {_OPS.MAX_REPEAT, _OPS.MIN_REPEAT, _OPS.POSSESSIVE_REPEAT}


_KEYWORDS = frozenset(
    {
        "properties",
        "items",
        "prefixItems",
        "additionalProperties",
        "patternProperties",
        "propertyNames",
        "$defs",
        "definitions",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)


def _structural(pointer: str) -> str:
    """The pointer with the caller's own names (property and definition names) shown as '*':
    enough to find the place, without echoing the caller's content in an error body."""
    return "/".join(
        part if part in _KEYWORDS or part.isdigit() or not part else "*"
        for part in pointer.split("/")
    )


def _refused(message: str, where: str, hint: str) -> InvalidRequestError:
    location = f" at {_structural(where)}" if where else ""
    return InvalidRequestError(f"{_PARAM}{location}: {message}", hint=hint, param=_PARAM)


def _nodes(schema: Any, max_depth: int) -> Iterator[tuple[str, Any]]:
    """Every dict in the schema document with its JSON pointer, depth-first, iteratively."""
    stack: list[tuple[str, Any, int]] = [("", schema, 1)]
    while stack:
        pointer, node, depth = stack.pop()
        if depth > max_depth:
            raise _refused(
                f"nested deeper than {max_depth} levels",
                pointer,
                "flatten the schema or raise gateway.limits.schema.max_depth",
            )
        if isinstance(node, dict):
            yield pointer, node
            children = node.items()
        elif isinstance(node, list):
            children = ((str(i), item) for i, item in enumerate(node))  # type: ignore[assignment]
        else:
            continue
        for key, child in children:
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            stack.append((f"{pointer}/{escaped}", child, depth + 1))


def _pattern_problem(pattern: str, limits: SchemaLimits) -> str | None:
    if len(pattern) > limits.max_pattern_chars:
        return f"a pattern of {len(pattern)} characters (limit {limits.max_pattern_chars})"
    try:
        parsed = regex_parser.parse(pattern)
    except Exception:  # re.error, or RecursionError on absurd nesting
        return "a pattern that is not a valid regular expression"
    stack = [parsed]
    while stack:
        for op, argument in stack.pop():
            if op in _LOOKAROUND:
                return "a lookahead or lookbehind, which a grammar cannot express"
            if op in _BACKREFERENCE:
                return "a backreference, which a grammar cannot express"
            if op in _REPEATS:
                low, high, body = argument
                bound = low if high is _OPS.MAXREPEAT else max(low, high)
                if bound > limits.max_pattern_repeat:
                    return f"a repeat count of {bound} (limit {limits.max_pattern_repeat})"
                stack.append(body)
            elif op is _OPS.SUBPATTERN:
                stack.append(argument[-1])
            elif op is _OPS.BRANCH:
                stack.extend(argument[1])
            elif op is _OPS.ATOMIC_GROUP:
                stack.append(argument)
    return None


def _ref_targets(pointer: str, node: dict[str, Any]) -> str | None:
    reference = node.get("$ref")
    if reference is None:
        return None
    if not isinstance(reference, str) or not reference.startswith("#"):
        raise _refused(
            "a $ref that is not a local reference ('#/...')",
            pointer,
            "inline the referenced schema or move it under $defs",
        )
    return reference[1:]


def _has_cycle(refs: dict[str, list[str]]) -> bool:
    """Refs form a cycle when following them from the root can reach a schema that contains
    the reference being followed (the root's own pointer is '')."""
    targets = {target for found in refs.values() for target in found}

    def inside(target: str) -> list[str]:
        # Every reference written somewhere within the schema at ``target``.
        return [t for where, found in refs.items() for t in found if _within(where, target)]

    state: dict[str, int] = {}
    for start in sorted(targets | {""}):
        if state.get(start):
            continue
        stack = [(start, iter(inside(start)))]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return True
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(inside(nxt))))
    return False


def _within(pointer: str, target: str) -> bool:
    return pointer == target or pointer.startswith(target + "/")


def check_schema_limits(
    schema: dict[str, Any], limits: SchemaLimits, *, param: str = _PARAM
) -> None:
    """Raise InvalidRequestError naming the first limit ``schema`` (found at ``param``: the
    response format's, or a tool's parameters) breaks."""
    try:
        _check_limits(schema, limits)
    except InvalidRequestError as error:
        if param == _PARAM:
            raise
        message = error.message.replace(_PARAM, param, 1)
        raise InvalidRequestError(message, hint=error.hint, param=param) from None


def _check_limits(schema: dict[str, Any], limits: SchemaLimits) -> None:
    size = len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limits.max_bytes:
        raise _refused(
            f"{size} bytes of JSON (limit {limits.max_bytes})",
            "",
            "send a smaller schema or raise gateway.limits.schema.max_bytes",
        )
    properties = enum_values = 0
    refs: dict[str, list[str]] = {}
    for pointer, node in _nodes(schema, limits.max_depth):
        if isinstance(node.get("properties"), dict):
            properties += len(node["properties"])
        enum = node.get("enum")
        enum_values += (len(enum) if isinstance(enum, list) else 0) + ("const" in node)
        pattern_properties = node.get("patternProperties")
        patterns = list(pattern_properties) if isinstance(pattern_properties, dict) else []
        if isinstance(node.get("pattern"), str):
            patterns.append(node["pattern"])
        for pattern in patterns:
            problem = _pattern_problem(pattern, limits)
            if problem is not None:
                raise _refused(
                    f"pattern has {problem}",
                    pointer,
                    "use a plain regular expression (no lookaround or backreferences) with "
                    "small repeat counts",
                )
        for keyword in _LENGTH_KEYWORDS:
            value = node.get(keyword)
            if isinstance(value, int) and value > limits.max_string_length:
                raise _refused(
                    f"{keyword}={value} (limit {limits.max_string_length})",
                    pointer,
                    f"use {keyword} of at most {limits.max_string_length}",
                )
        target = _ref_targets(pointer, node)
        if target is not None:
            refs.setdefault(pointer, []).append(target)
            if len(refs) > limits.max_refs:
                raise _refused(
                    f"more than {limits.max_refs} $ref keywords",
                    pointer,
                    "inline some definitions or raise gateway.limits.schema.max_refs",
                )
    if properties > limits.max_properties:
        raise _refused(
            f"{properties} properties in all (limit {limits.max_properties})",
            "",
            "split the extraction into several requests or raise "
            "gateway.limits.schema.max_properties",
        )
    if enum_values > limits.max_enum_values:
        raise _refused(
            f"{enum_values} enum/const values in all (limit {limits.max_enum_values})",
            "",
            "use fewer enum values or a pattern",
        )
    if refs and _has_cycle(refs):
        raise _refused(
            "a recursive $ref (the schema refers back to itself), which a grammar cannot bound",
            "",
            "unroll the recursion to a fixed depth",
        )
