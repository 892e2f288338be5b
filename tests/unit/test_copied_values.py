"""Every schema's fields get a kind of value from the schema alone, and strings that must be
copied from the text are checked against it, whatever the field is called."""

import json

import pytest

from tierserve.signals.value_kinds import value_kinds
from tierserve.validate import ValidationContext, run_validators

# Field names the project's own schemas never use: the caller's own schema.
CARD = {
    "type": "object",
    "properties": {
        "person": {"type": "string"},
        "phone": {"type": "string"},
        "mail": {"type": "string", "format": "email"},
        "employer": {"type": "string"},
        "seniority": {"type": "string", "enum": ["junior", "senior"]},
        "met_on": {"type": "string"},
        "headcount": {"type": "integer"},
        "currency_code": {"type": "string"},
        "summary": {"type": "string"},
        "active": {"type": "boolean"},
        "offices": {
            "type": "array",
            "items": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
}
TEXT = (
    "Met Dr. Ana-Luísa Ferreira (Ferreira Logistics, ~40 staff) on 4 May 2026; call her on "
    "+1 (555) 010-2233 or write to ana@ferreira.example. Offices in Porto and Lyon."
)


def test_a_schemas_fields_get_a_kind_of_value_from_the_schema_alone() -> None:
    assert value_kinds(CARD) == {
        "person": "copied",
        "phone": "copied",
        "mail": "copied",
        "employer": "copied",
        "seniority": "judgement",
        "met_on": "date",
        "headcount": "number",
        "currency_code": "code",
        "summary": "text",
        "active": "judgement",
        "offices[].city": "copied",
    }


def copied(answer: dict[str, object]) -> tuple[bool, str, tuple[str, ...]]:
    context = ValidationContext(json_schema=CARD, input_text=TEXT)
    (result,) = run_validators(("copied",), json.dumps(answer), context)
    return result.passed, result.detail, result.fields


RIGHT = {
    "person": "Ana-Luísa Ferreira",
    "phone": "5550102233",
    "mail": "ana@ferreira.example",
    "employer": "ferreira logistics",
    "seniority": "senior",
    "summary": "A logistics contact met in May.",
    "offices": [{"city": "Porto"}, {"city": "Lyon"}],
}


def test_values_copied_from_the_text_pass_however_they_are_written() -> None:
    assert copied(RIGHT)[0]
    assert copied({**RIGHT, "person": "Ferreira, Ana-Luisa"})[0] is False  # an accent dropped
    assert copied({**RIGHT, "person": "FERREIRA, Ana-Luísa", "phone": "+1 555 010 2233"})[0]


@pytest.mark.parametrize(
    ("field", "invented"),
    [
        ("person", "Ana Ferreira-Santos"),
        ("phone", "+1 (555) 010-2234"),
        ("employer", "Ferreira Freight"),
    ],
)
def test_an_invented_value_fails_naming_its_field(field: str, invented: str) -> None:
    passed, detail, fields = copied({**RIGHT, field: invented})
    assert not passed and fields == (field,) and detail == f"{field}: value not in the source"


def test_an_invented_value_in_a_list_names_its_position() -> None:
    passed, _, fields = copied({**RIGHT, "offices": [{"city": "Porto"}, {"city": "Paris"}]})
    assert not passed and fields == ("offices[1].city",)


def test_judgements_free_text_and_codes_are_not_held_to_the_text() -> None:
    # Neither the enum, the summary nor a code is written in the text: none of them is copied.
    assert copied({**RIGHT, "seniority": "junior", "summary": "Nothing", "currency_code": "EUR"})[0]
