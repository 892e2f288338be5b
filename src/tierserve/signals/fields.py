"""Field-level confidence of a JSON answer: each field judged by the tokens of its own value.

A constrained answer's structural tokens (braces, quotes, keys, commas) are forced by the
grammar and carry near-certain probabilities, so a whole-answer quantile says little about the
one date or amount the model was unsure of. Here every leaf value (string, number, boolean,
null) is located in the answer's text, the tokens whose characters overlap it are found from
their character spans, and the field's confidence is the probability of its least likely
token. A string's span includes its closing quote: where a value ends is the model's choice
too.

The value itself is kept only as a short digest, so the decision log can say whether two tiers
agreed on a field without storing what the field held.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.decoder import scanstring  # type: ignore[attr-defined]
from json.scanner import NUMBER_RE
from typing import Any

from tierserve.signals.value_kinds import ValueKind

__all__ = ["FieldReading", "covers", "field_pattern", "json_leaves", "read_fields"]

_WHITESPACE = " \t\n\r"
_LITERALS = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class FieldReading:
    """One field of an answer: where it is, how sure the model was of it, what it held."""

    path: str
    """``customer.name``, ``line_items[0].amount``."""
    confidence: float
    """Probability of the least likely token of the value; 1.0 when the grammar wrote it all
    (no generated token overlaps it)."""
    tokens: int
    digest: str
    """The first 16 hex digits of the SHA-256 of the value's canonical JSON."""
    kind: ValueKind | None = None
    """The kind of value its schema says it holds (None: not in the schema, or a record
    written before kinds were read)."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: str
    start: int
    end: int
    value: Any


class _NotJson(ValueError):
    pass


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in _WHITESPACE:
        index += 1
    return index


def _expect(text: str, index: int, char: str) -> int:
    index = _skip(text, index)
    if not text.startswith(char, index):
        raise _NotJson(f"expected {char!r} at {index}")
    return index + 1


def _leaves(text: str, index: int, path: str) -> Iterator[tuple[_Leaf | None, int]]:
    """Yields each leaf under the value at ``index``, then ``(None, end)``."""
    index = _skip(text, index)
    head = text[index : index + 1]
    if head == "{":
        index = _skip(text, index + 1)
        if text.startswith("}", index):
            yield None, index + 1
            return
        while True:
            index = _expect(text, index, '"')
            key, index = scanstring(text, index)
            index = _expect(text, index, ":")
            for leaf, index in _leaves(text, index, f"{path}.{key}" if path else key):  # noqa: B020
                if leaf is not None:
                    yield leaf, index
            index = _skip(text, index)
            if text.startswith("}", index):
                yield None, index + 1
                return
            index = _expect(text, index, ",")
    elif head == "[":
        index = _skip(text, index + 1)
        if text.startswith("]", index):
            yield None, index + 1
            return
        position = 0
        while True:
            for leaf, index in _leaves(text, index, f"{path}[{position}]"):  # noqa: B020
                if leaf is not None:
                    yield leaf, index
            position += 1
            index = _skip(text, index)
            if text.startswith("]", index):
                yield None, index + 1
                return
            index = _expect(text, index, ",")
    elif head == '"':
        value, end = scanstring(text, index + 1)
        yield _Leaf(path, index + 1, end, value), end
        yield None, end
    else:
        for literal, value in _LITERALS.items():
            if text.startswith(literal, index):
                end = index + len(literal)
                yield _Leaf(path, index, end, value), end
                yield None, end
                return
        number = NUMBER_RE.match(text, index)
        if number is None:
            raise _NotJson(f"no JSON value at {index}")
        integer, fraction, exponent = number.groups()
        value = (
            float(integer + (fraction or "") + (exponent or ""))
            if fraction or exponent
            else int(integer)
        )
        yield _Leaf(path, index, number.end(), value), number.end()
        yield None, number.end()


def json_leaves(text: str) -> tuple[_Leaf, ...] | None:
    """Every leaf value of the JSON document ``text`` with its character span; None when the
    text is not one JSON document."""
    try:
        found: list[_Leaf] = []
        end = len(text)
        for leaf, end in _leaves(text, 0, ""):  # noqa: B007
            if leaf is not None:
                found.append(leaf)
        if _skip(text, end) != len(text):
            return None
        return tuple(found)
    except (_NotJson, ValueError, IndexError):
        return None


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.strip().encode()).hexdigest()[:16]


def read_fields(
    text: str,
    token_logprobs: Sequence[float],
    token_spans: Sequence[tuple[int, int]],
    kinds: Mapping[str, ValueKind] | None = None,
) -> tuple[FieldReading, ...]:
    """The field readings of a JSON answer, each with its kind of value from ``kinds`` (by
    path without array positions: :func:`~tierserve.signals.value_kinds.value_kinds`); () when
    it is not JSON or its tokens' spans are unknown (an engine that did not report them)."""
    if not token_spans or len(token_spans) != len(token_logprobs):
        return ()
    leaves = json_leaves(text)
    if leaves is None:
        return ()
    readings = []
    for leaf in leaves:
        overlapping = [
            logprob
            for (start, end), logprob in zip(token_spans, token_logprobs, strict=True)
            if start < end and start < leaf.end and end > leaf.start
        ]
        lowest = min(overlapping, default=0.0)
        confidence = 0.0 if math.isnan(lowest) else math.exp(lowest)
        readings.append(
            FieldReading(
                leaf.path,
                round(confidence, 6),
                len(overlapping),
                _digest(leaf.value),
                (kinds or {}).get(field_pattern(leaf.path)),
            )
        )
    return tuple(readings)


def field_pattern(path: str) -> str:
    """A path with its array positions dropped, as a policy names fields:
    ``line_items[2].amount`` -> ``line_items[].amount``."""
    out, depth = [], 0
    for char in path:
        if char == "[":
            depth += 1
            out.append("[")
        elif char == "]":
            depth -= 1
            out.append("]")
        elif depth == 0:
            out.append(char)
    return "".join(out)


def covers(name: str, path: str) -> bool:
    """Whether a field ``name`` a policy or a label gives covers the field at ``path``: the
    field itself or one under it (``line_items`` covers ``line_items[].amount``)."""
    return path == name or path.startswith((f"{name}.", f"{name}["))
