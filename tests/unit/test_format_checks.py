"""Format checks that apply to any schema, a caller's own included, without rules."""

import json

import pytest

from tierserve.validate import ValidationContext, run_validators
from tierserve.validate.formats import field_kinds

SCHEMA = {
    "type": "object",
    "$defs": {
        "Contact": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "email": {"type": "string"}},
        }
    },
    "properties": {
        "invoice_date": {"type": "string"},
        "due": {"type": "string", "format": "date"},
        "currency": {"type": "string"},
        "total": {"type": "number"},
        "billed_to": {"$ref": "#/$defs/Contact"},
        "items": {
            "type": "array",
            "items": {"type": "object", "properties": {"amount": {"type": "number"}}},
        },
    },
}
SOURCE = (
    "Invoice from Acme GmbH dated 3 March 2026, due 2026-04-02. Bill to Ann Lee "
    "<ann.lee@example.com>. Items: 1.234,50 € and 15,00 €. Total € 1.249,50."
)
RIGHT = {
    "invoice_date": "2026-03-03",
    "due": "2026-04-02",
    "currency": "EUR",
    "total": 1249.5,
    "billed_to": {"name": "Ann Lee", "email": "ann.lee@example.com"},
    "items": [{"amount": 1234.5}, {"amount": 15}],
}
CHECKS = ("dates", "emails", "currencies", "source_numbers")


def judged(answer: dict) -> dict[str, tuple[bool, str, tuple[str, ...]]]:
    context = ValidationContext(json_schema=SCHEMA, input_text=SOURCE)
    return {
        r.name: (r.passed, r.detail, r.fields)
        for r in run_validators(CHECKS, json.dumps(answer), context)
    }


def test_the_schema_tells_which_fields_each_check_reads() -> None:
    assert field_kinds(SCHEMA) == {
        "invoice_date": "date",
        "due": "date",
        "currency": "currency",
        "billed_to.email": "email",
    }


def test_a_right_answer_passes_every_check() -> None:
    assert all(passed for passed, _, _ in judged(RIGHT).values())


@pytest.mark.parametrize(
    ("change", "check", "detail"),
    [
        ({"invoice_date": "March 3, 2026"}, "dates", "invoice_date: not an ISO 8601 date"),
        ({"invoice_date": "2026-03-30"}, "dates", "invoice_date: day not in the source"),
        ({"due": "2025-04-02"}, "dates", "due: year not in the source"),
        ({"currency": "€"}, "currencies", "currency: not an ISO 4217 code"),
        ({"currency": "USD"}, "currencies", "currency: currency not in the source"),
        ({"total": 1294.5}, "source_numbers", "total: number not in the source"),
    ],
)
def test_each_wrong_form_fails_its_own_check_naming_the_field(
    change: dict, check: str, detail: str
) -> None:
    results = judged({**RIGHT, **change})
    passed, got, fields = results[check]
    assert not passed and got.startswith(detail)
    assert fields == (detail.split(":")[0],)
    assert all(p for name, (p, _, _) in results.items() if name != check)


def test_emails_must_be_valid_and_copied_from_the_source() -> None:
    invented = judged({**RIGHT, "billed_to": {"name": "Ann Lee", "email": "ann@example.com"}})
    assert invented["emails"][:2] == (False, "billed_to.email: address not in the source")
    broken = judged({**RIGHT, "billed_to": {"name": "Ann Lee", "email": "ann.lee@"}})
    assert broken["emails"][:2] == (False, "billed_to.email: not a valid e-mail address")


def test_numbers_in_an_array_are_named_with_their_position() -> None:
    wrong = judged({**RIGHT, "items": [{"amount": 1234.5}, {"amount": 16}]})
    assert wrong["source_numbers"] == (
        False,
        "items[1].amount: number not in the source",
        ("items[1].amount",),
    )


def test_a_dollar_sign_allows_any_dollar_and_a_written_code_decides() -> None:
    schema = {"type": "object", "properties": {"currency": {"type": "string"}}}
    for source, code, passed in [
        ("Total $40", "CAD", True),
        ("Total $40", "EUR", False),
        ("Total 40 CHF", "CHF", True),
        ("Total US$40", "CAD", False),
        ("Total 40", "JPY", True),  # nothing in the source says otherwise
    ]:
        context = ValidationContext(json_schema=schema, input_text=source)
        (result,) = run_validators(["currencies"], json.dumps({"currency": code}), context)
        assert result.passed is passed, (source, code)


def test_not_json_is_left_to_the_schema_check() -> None:
    context = ValidationContext(json_schema=SCHEMA, input_text=SOURCE)
    assert all(r.passed for r in run_validators(CHECKS, "not json", context))


def test_a_decimal_comma_misread_as_thousands_is_not_in_the_source() -> None:
    schema = {"type": "object", "properties": {"total": {"type": "number"}}}
    context = ValidationContext(json_schema=schema, input_text="Total 2.490,24 EUR")
    for total, passed in [(2490.24, True), (2.49024, False), (249024, False)]:
        (result,) = run_validators(["source_numbers"], json.dumps({"total": total}), context)
        assert result.passed is passed, total


def test_reserved_domains_are_addresses_too() -> None:
    schema = {"type": "object", "properties": {"email": {"type": "string"}}}
    context = ValidationContext(json_schema=schema, input_text="kenji.martin@mail.test")
    answer = json.dumps({"email": "kenji.martin@mail.test"})
    assert run_validators(["emails"], answer, context)[0].passed
