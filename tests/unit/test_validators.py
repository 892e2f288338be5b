import json

from tierserve.validate import ValidationContext, run_validators

TICKET = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "string"},
        "severity": {"type": "string", "enum": ["low", "medium", "high"]},
    },
    "required": ["customer_id", "severity"],
}


def one(name: str, text: str, **context: object) -> tuple[bool, str]:
    (result,) = run_validators([name], text, ValidationContext(**context))  # type: ignore[arg-type]
    return result.passed, result.code


def test_schema_accepts_a_valid_object() -> None:
    text = json.dumps({"customer_id": "C-1", "severity": "high"})
    assert one("schema", text, json_schema=TICKET) == (True, "schema=ok")


def test_schema_names_the_bad_field() -> None:
    passed, code = one("schema", '{"customer_id": "C-1", "severity": "urgent"}', json_schema=TICKET)
    assert not passed and code.startswith("schema=fail(severity: 'urgent' is not one of")


def test_schema_reports_cut_off_json() -> None:
    passed, code = one("schema", '{"customer_id": "C-1", "sever', json_schema=TICKET)
    assert not passed and "invalid JSON" in code


def test_required_fields_must_not_be_empty() -> None:
    passed, code = one(
        "required_fields", '{"customer_id": "", "severity": "low"}', json_schema=TICKET
    )
    assert not passed and code == "required_fields=fail(empty customer_id)"


def test_grounding_rejects_numbers_not_in_the_sources() -> None:
    sources = ["Refunds are processed within 5 business days of approval."]
    assert one("grounding", "Refunds are processed within 5 business days.", sources=sources)[0]
    passed, code = one("grounding", "Refunds take 30 days.", sources=sources)
    assert not passed and code == "grounding=fail(unsupported 30)"


def test_grounding_rejects_answers_about_something_else() -> None:
    sources = ["Our store opens at 9 and closes at 17 on weekdays."]
    passed, code = one(
        "grounding", "Penguins migrate across Antarctic ice shelves.", sources=sources
    )
    assert not passed and code.startswith("grounding=fail(support=")


def test_safety_blocks_new_pii_and_forbidden_promises() -> None:
    assert not one("safety", "Mail bob@example.com for help")[0]
    assert one("safety", "We replied to bob@example.com", input_pii=("email",))[0]
    passed, code = one("safety", "We guarantee a refund.", forbidden_phrases=["we guarantee"])
    assert not passed
    assert code == "safety=fail(forbidden 'we guarantee')"


def test_non_empty() -> None:
    assert one("non_empty", "   ") == (False, "non_empty=fail(empty)")
