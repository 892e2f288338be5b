"""Semantic rules: what a schema cannot say about an extracted object.

A JSON schema fixes the shape; these rules check the meaning, declared per named schema in the
policy file. Fields are JMESPath expressions (``total``, ``line_items[*].amount``), so one rule
can address every element of a list. Each rule has a name that appears in reason codes::

    semantic=fail(total_is_sum_of_items: total 120.0 != sum 110.0)

Rule kinds:

* ``non_empty``: the fields hold something (not null, "", [] or {}).
* ``iso_date``: every value is an ISO-8601 calendar date (YYYY-MM-DD).
* ``one_of``: every value is one of ``values``.
* ``in_input``: every value occurs in the request's text (ids are copied, never invented).
* ``sum_equals``: ``total`` equals the sum of ``parts``, within ``tolerance``.
* ``product_equals``: in each object of ``items``, ``product`` equals the product of
  ``factors`` (amount = quantity x unit_price).
* ``implies``: when ``if_field`` equals ``equals``, ``then_field`` is one of ``then_in``.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

__all__ = ["SemanticRule", "check_rules"]


def _compiles(expression: str) -> str:
    try:
        jmespath.compile(expression)
    except JMESPathError as error:
        raise ValueError(
            f"{expression!r} is not a JMESPath expression ({error}); write fields as "
            "'total' or 'line_items[*].amount'"
        ) from None
    return expression


JmesPath = Annotated[
    str, Field(min_length=1, description="A JMESPath expression."), AfterValidator(_compiles)
]


_HEAD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(
        default="", description="Name shown in reason codes; defaults to the kind and fields."
    )
    message: str = Field(default="", description="Why the rule exists, for reviewers.")

    @property
    def label(self) -> str:
        return self.name or self._default_name()

    @property
    def subject_fields(self) -> tuple[str, ...]:
        """The top-level fields the rule reads (``line_items[*].amount`` is ``line_items``):
        what an answer breaking it has in doubt."""
        expressions = [
            value
            for name in ("fields", "total", "parts", "items", "if_field", "then_field")
            for value in _as_list(getattr(self, name, None))
        ]
        heads = (_HEAD.match(e) for e in expressions)
        return tuple(dict.fromkeys(h.group(0) for h in heads if h is not None))

    def _default_name(self) -> str:
        raise NotImplementedError


class _FieldsRule(_Rule):
    kind: str
    fields: list[JmesPath] = Field(min_length=1, description="Fields the rule applies to.")

    def _default_name(self) -> str:
        return f"{self.kind}({','.join(self.fields)})"


class NonEmptyRule(_FieldsRule):
    kind: Literal["non_empty"]


class IsoDateRule(_FieldsRule):
    kind: Literal["iso_date"]


class InInputRule(_FieldsRule):
    kind: Literal["in_input"]


class OneOfRule(_FieldsRule):
    kind: Literal["one_of"]
    values: list[str | int | float | bool] = Field(min_length=1)


class SumEqualsRule(_Rule):
    kind: Literal["sum_equals"]
    total: JmesPath
    parts: JmesPath
    tolerance: float = Field(default=0.01, ge=0.0, description="Absolute tolerance.")

    def _default_name(self) -> str:
        return f"{self.total}=sum({self.parts})"


class ProductEqualsRule(_Rule):
    kind: Literal["product_equals"]
    items: JmesPath = Field(description="A list of objects, e.g. 'line_items'.")
    product: str = Field(min_length=1, description="Key of the product in each object.")
    factors: list[str] = Field(min_length=2, description="Keys of the factors in each object.")
    tolerance: float = Field(default=0.01, ge=0.0)

    def _default_name(self) -> str:
        return f"{self.items}.{self.product}={'*'.join(self.factors)}"


class ImpliesRule(_Rule):
    kind: Literal["implies"]
    if_field: JmesPath
    equals: str | int | float | bool
    then_field: JmesPath
    then_in: list[str | int | float | bool] = Field(min_length=1)

    def _default_name(self) -> str:
        return f"{self.if_field}=>{self.then_field}"


SemanticRule = Annotated[
    NonEmptyRule
    | IsoDateRule
    | InInputRule
    | OneOfRule
    | SumEqualsRule
    | ProductEqualsRule
    | ImpliesRule,
    Field(discriminator="kind"),
]


def _values(value: Any, path: str) -> list[Any]:
    """Every value the path selects: a projection's elements, or the one value."""
    found = jmespath.search(path, value)
    if isinstance(found, list) and ("[" in path or "*" in path):
        return found
    return [found]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _is_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) != 10:
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def _violation(rule: SemanticRule, value: Any, input_text: str) -> str | None:
    """What is wrong with ``value`` under ``rule``, or None when it holds."""
    match rule:
        case NonEmptyRule(fields=fields):
            for path in fields:
                if any(v in (None, "", [], {}) for v in _values(value, path)):
                    return f"{path} is empty"
        case IsoDateRule(fields=fields):
            for path in fields:
                bad = [v for v in _values(value, path) if v is not None and not _is_date(v)]
                if bad:
                    return f"{path}={bad[0]!r} is not YYYY-MM-DD"
        case OneOfRule(fields=fields, values=allowed):
            for path in fields:
                bad = [v for v in _values(value, path) if v not in allowed]
                if bad:
                    return f"{path}={bad[0]!r} not in {allowed}"
        case InInputRule(fields=fields):
            source = _normalized(input_text)
            for path in fields:
                for v in _values(value, path):
                    if v is not None and _normalized(str(v)) not in source:
                        return f"{path}={v!r} is not in the input"
        case SumEqualsRule(total=total_path, parts=parts_path, tolerance=tolerance):
            total = _number(jmespath.search(total_path, value))
            parts = [_number(v) for v in _values(value, parts_path)]
            if total is None or any(p is None for p in parts):
                return f"{total_path} or {parts_path} is not a number"
            summed = math.fsum(p for p in parts if p is not None)
            if abs(total - summed) > tolerance:
                return f"{total_path} {total:g} != sum {summed:g}"
        case ProductEqualsRule(items=items_path, product=product, factors=factors):
            items = jmespath.search(items_path, value) or []
            for index, item in enumerate(items if isinstance(items, list) else []):
                if not isinstance(item, dict):
                    return f"{items_path}[{index}] is not an object"
                numbers = [_number(item.get(key)) for key in (product, *factors)]
                if any(n is None for n in numbers):
                    return f"{items_path}[{index}] lacks a number"
                expected = math.prod(n for n in numbers[1:] if n is not None)
                if abs((numbers[0] or 0.0) - expected) > rule.tolerance:
                    return f"{items_path}[{index}].{product} {numbers[0]:g} != {expected:g}"
        case ImpliesRule(if_field=if_field, equals=equals, then_field=then_field):
            if jmespath.search(if_field, value) == equals:
                then = jmespath.search(then_field, value)
                if then not in rule.then_in:
                    return f"{if_field}={equals!r} but {then_field}={then!r}"
    return None


def check_rules(
    rules: Sequence[SemanticRule], value: Any, input_text: str
) -> tuple[str, str | None]:
    """The first broken rule's name and what broke, or ``("", None)`` when all hold."""
    for rule in rules:
        try:
            problem = _violation(rule, value, input_text)
        except JMESPathError as error:  # e.g. a projection over a string
            problem = f"cannot evaluate: {error}"
        if problem is not None:
            return rule.label, problem
    return "", None
