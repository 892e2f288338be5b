"""Schema limits refuse what a grammar cannot bound and pass what apps send."""

from typing import Any

import pytest

from tests.fakes import SUPPORT
from tierserve.errors import InvalidRequestError
from tierserve.limits import SchemaLimits
from tierserve.structured.schema_limits import check_schema_limits

LIMITS = SchemaLimits()
ADDRESS = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 80}}}


def test_shared_definitions_are_not_recursion() -> None:
    schema = {
        "type": "object",
        "properties": {
            "billing": {"$ref": "#/$defs/address"},
            "shipping": {"$ref": "#/$defs/address"},
            "contact": {"$ref": "#/$defs/contact"},
        },
        "$defs": {
            "address": ADDRESS,
            "contact": {"type": "object", "properties": {"home": {"$ref": "#/$defs/address"}}},
        },
    }
    check_schema_limits(schema, LIMITS)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"self": {"$ref": "#"}}},
        {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
        {
            "$defs": {
                "a": {"type": "array", "items": {"$ref": "#/$defs/b"}},
                "b": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}},
            },
            "properties": {"start": {"$ref": "#/$defs/b"}},
        },
    ],
    ids=["root", "self", "through two definitions"],
)
def test_recursive_references_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError, match="recursive \\$ref"):
        check_schema_limits(schema, LIMITS)


def test_every_registered_schema_of_the_shipped_policy_is_within_the_limits() -> None:
    for spec in SUPPORT.schemas.values():
        check_schema_limits(spec.schema_, LIMITS)


@pytest.mark.parametrize(
    ("regex", "allowed"),
    [
        (r"^[A-Z]{3}$", True),
        (r"^\d{4}-\d{2}-\d{2}$", True),
        (r"^INV-[0-9]{1,64}$", True),
        (r"^a{65}$", False),
        (r"^(?!x)[a-z]+$", False),
        (r"(?<=a)b", False),
        (r"(x)(?(1)y|z)", False),
        (r"[unclosed", False),
    ],
)
def test_patterns_are_plain_regular_expressions_with_small_repeats(
    regex: str, allowed: bool
) -> None:
    schema = {"type": "string", "pattern": regex}
    if allowed:
        check_schema_limits(schema, LIMITS)
    else:
        with pytest.raises(InvalidRequestError):
            check_schema_limits(schema, LIMITS)


def test_each_limit_is_configurable() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(150)}}
    with pytest.raises(InvalidRequestError, match="limit 100"):
        check_schema_limits(wide, LIMITS)
    check_schema_limits(wide, SchemaLimits(max_properties=200))
