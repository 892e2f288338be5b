"""Checks an answer must pass before the gate accepts it.

Each check returns a :class:`ValidationResult` whose ``detail`` is short enough for a reason
code (``schema=fail(missing customer_id)``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from tierserve.pii import detect_pii
from tierserve.validate.formats import FORMAT_CHECKS, Checker, parse_answer
from tierserve.validate.rules import SemanticRule, check_rules
from tierserve.validate.tool_args import ProposedCall, ToolContract, check_tool_args

__all__ = [
    "GROUNDING_MIN_SUPPORT",
    "Output",
    "ValidationContext",
    "ValidationResult",
    "run_validators",
]

GROUNDING_MIN_SUPPORT = 0.6
"""Share of an answer's content words that must occur in its sources."""
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
        "you",
        "your",
        "we",
        "our",
        "i",
        "me",
        "my",
        "can",
        "do",
        "does",
        "not",
        "no",
        "yes",
        "if",
    ]
)


@dataclass(frozen=True, slots=True)
class ValidationResult:
    name: str
    passed: bool
    detail: str = ""
    fields: tuple[str, ...] = ()
    """The answer's fields (JSON paths) a failed check is about, when it can name them."""

    @property
    def code(self) -> str:
        state = "ok" if self.passed else "fail"
        return f"{self.name}={state}({self.detail})" if self.detail else f"{self.name}={state}"


@dataclass(frozen=True, slots=True)
class ValidationContext:
    json_schema: dict[str, Any] | None = None
    sources: Sequence[str] = ()
    """Supplied context/citations the answer must be grounded in."""
    input_pii: tuple[str, ...] = ()
    """PII kinds in the request: the answer may repeat those, not introduce new ones."""
    forbidden_phrases: Sequence[str] = field(default=())
    rules: Sequence[SemanticRule] = ()
    """The schema's semantic rules (see :mod:`tierserve.validate.rules`)."""
    input_text: str = ""
    """The user's text: extracted ids and names must be copied from it."""
    tools: ToolContract | None = None
    """The tools the caller offered, when it offered any."""


@dataclass(frozen=True, slots=True)
class Output:
    """What a tier answered: its text and the tool calls its parser read from it."""

    text: str
    calls: tuple[ProposedCall, ...] = ()
    unreadable_call: bool = False


def _parse_json(text: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as error:
        return None, f"invalid JSON at char {error.pos}"


def check_non_empty(output: Output, _: ValidationContext) -> ValidationResult:
    if output.calls:
        return ValidationResult("non_empty", True, "tool calls")
    text = output.text.strip()
    return ValidationResult("non_empty", bool(text), "" if text else "empty")


def check_tool_calls(output: Output, context: ValidationContext) -> ValidationResult:
    if context.tools is None:
        return ValidationResult("tool_args", True, "no tools")
    passed, detail = check_tool_args(output.calls, output.unreadable_call, context.tools)
    return ValidationResult("tool_args", passed, detail)


def check_schema(text: str, context: ValidationContext) -> ValidationResult:
    if context.json_schema is None:
        return ValidationResult("schema", True, "no schema")
    value, problem = _parse_json(text)
    if problem:
        return ValidationResult("schema", False, problem)
    validator = Draft202012Validator(
        context.json_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(value), key=str)
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.absolute_path) or "<root>"
        return ValidationResult("schema", False, f"{where}: {first.message}"[:120])
    return ValidationResult("schema", True)


def check_required_fields(text: str, context: ValidationContext) -> ValidationResult:
    if context.json_schema is None:
        return ValidationResult("required_fields", True, "no schema")
    value, problem = _parse_json(text)
    if problem or not isinstance(value, dict):
        return ValidationResult("required_fields", False, problem or "not an object")
    required = context.json_schema.get("required", [])
    empty = [name for name in required if value.get(name) in (None, "", [], {})]
    return ValidationResult(
        "required_fields", not empty, f"empty {','.join(empty)}" if empty else ""
    )


def check_semantic(text: str, context: ValidationContext) -> ValidationResult:
    if not context.rules:
        return ValidationResult("semantic", True, "no rules")
    value, problem = _parse_json(text)
    if problem:
        return ValidationResult("semantic", False, problem)
    rule, broken = check_rules(context.rules, value, context.input_text)
    if broken is not None:
        fields = next((r.subject_fields for r in context.rules if r.label == rule), ())
        return ValidationResult("semantic", False, f"{rule}: {broken}"[:160], fields)
    return ValidationResult("semantic", True)


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def check_grounding(text: str, context: ValidationContext) -> ValidationResult:
    """Numbers must appear in the sources; most content words must too."""
    if not context.sources:
        return ValidationResult("grounding", True, "no sources")
    source_text = " ".join(context.sources).lower()
    unsupported_numbers = [n for n in _NUMBER.findall(text) if n not in source_text]
    if unsupported_numbers:
        return ValidationResult("grounding", False, f"unsupported {unsupported_numbers[0]}")
    words = _content_words(text)
    if not words:
        return ValidationResult("grounding", True)
    support = len(words & _content_words(source_text)) / len(words)
    passed = support >= GROUNDING_MIN_SUPPORT
    return ValidationResult("grounding", passed, f"support={support:.2f}")


def check_safety(text: str, context: ValidationContext) -> ValidationResult:
    """No new personal data in the answer, and no phrase the policy forbids (promises...)."""
    leaked = sorted(set(detect_pii(text)) - set(context.input_pii))
    if leaked:
        return ValidationResult("safety", False, f"pii {','.join(leaked)}")
    lowered = text.lower()
    said = [p for p in context.forbidden_phrases if p.lower() in lowered]
    if said:
        return ValidationResult("safety", False, f"forbidden {said[0]!r}")
    return ValidationResult("safety", True)


Check = Callable[[Output, ValidationContext], ValidationResult]


def _format_check(name: str, checker: Checker) -> Check:
    """A format check of :mod:`tierserve.validate.formats` as a validator: it passes a non-JSON
    answer (the schema check fails that) and names every field it fails."""

    def check(output: Output, context: ValidationContext) -> ValidationResult:
        value = parse_answer(output.text)
        if value is None:
            return ValidationResult(name, True, "not JSON")
        problems = checker(value, context.json_schema, context.input_text)
        if not problems:
            return ValidationResult(name, True)
        path, why = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        fields = tuple(dict.fromkeys(p for p, _ in problems))
        return ValidationResult(name, False, f"{path}: {why}{more}"[:160], fields)

    return check


def _of_text(check: Callable[[str, ValidationContext], ValidationResult]) -> Check:
    """A check that reads only the answer's text."""
    return lambda output, context: check(output.text, context)


CHECKS: dict[str, Check] = {
    "non_empty": check_non_empty,
    "schema": _of_text(check_schema),
    "required_fields": _of_text(check_required_fields),
    "semantic": _of_text(check_semantic),
    "grounding": _of_text(check_grounding),
    "safety": _of_text(check_safety),
    "tool_args": check_tool_calls,
    **{name: _format_check(name, checker) for name, checker in FORMAT_CHECKS.items()},
}


def run_validators(
    names: Sequence[str], output: Output | str, context: ValidationContext
) -> tuple[ValidationResult, ...]:
    """``output``: the answer (a plain string is an answer without tool calls)."""
    answer = output if isinstance(output, Output) else Output(output)
    return tuple(CHECKS[name](answer, context) for name in names)
