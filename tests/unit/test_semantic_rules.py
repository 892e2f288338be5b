"""The semantic rules of the shipped schemas, on answers a model could give."""

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.fakes import STACK_TIERS
from tierserve.policy.spec import load_policy
from tierserve.validate import SemanticRule, ValidationContext, check_rules, run_validators

ROOT = Path(__file__).resolve().parents[2]
POLICY = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)
INVOICE_RULES = POLICY.schemas["invoice"].rules
TICKET_RULES = POLICY.schemas["ticket"].rules
EMAIL = "Customer C-20417: order A100 was charged twice on March 3, 2026. Refund please."


def invoice(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "vendor": "Acme",
        "invoice_number": "INV-7",
        "date": "2026-03-03",
        "currency": "EUR",
        "line_items": [
            {"description": "pen", "quantity": 2, "unit_price": 1.5, "amount": 3.0},
            {"description": "pad", "quantity": 1, "unit_price": 4.25, "amount": 4.25},
        ],
        "total": 7.25,
    }
    value.update(changes)
    return value


def ticket(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "customer_id": "C-20417",
        "issue_type": "billing",
        "severity": "medium",
        "refund_requested": True,
        "dates": ["2026-03-03"],
        "entities": [{"name": "A100", "type": "order_id"}],
    }
    value.update(changes)
    return value


def test_a_consistent_invoice_passes() -> None:
    assert check_rules(INVOICE_RULES, invoice(), "invoice INV-7 from Acme") == ("", None)


def test_a_total_that_is_not_the_sum_of_the_items_is_named() -> None:
    rule, problem = check_rules(INVOICE_RULES, invoice(total=8.0), "invoice INV-7")
    assert rule == "total_is_sum_of_items" and problem == "total 8 != sum 7.25"


def test_an_amount_that_is_not_quantity_times_price_is_named() -> None:
    items = invoice()["line_items"]
    items[0]["amount"] = 2.5
    rule, problem = check_rules(INVOICE_RULES, invoice(line_items=items, total=6.75), "INV-7")
    assert rule == "amount_is_quantity_times_price"
    assert problem == "line_items[0].amount 2.5 != 3"


def test_an_invented_invoice_number_fails() -> None:
    rule, problem = check_rules(INVOICE_RULES, invoice(invoice_number="INV-9"), "invoice INV-7")
    assert rule == "invoice_number_copied" and "'INV-9' is not in the input" in str(problem)


def test_ticket_rules_catch_invented_ids_bad_dates_and_inconsistent_refunds() -> None:
    assert check_rules(TICKET_RULES, ticket(), EMAIL) == ("", None)
    assert check_rules(TICKET_RULES, ticket(customer_id="C-99999"), EMAIL)[0] == (
        "customer_id_copied"
    )
    assert check_rules(TICKET_RULES, ticket(dates=["03/03/2026"]), EMAIL)[0] == "dates_iso"
    assert check_rules(TICKET_RULES, ticket(dates=["2026-02-30"]), EMAIL)[0] == "dates_iso"
    rule, problem = check_rules(TICKET_RULES, ticket(issue_type="technical"), EMAIL)
    assert rule == "refunds_are_billing_or_shipping"
    assert problem == "refund_requested=True but issue_type='technical'"
    assert check_rules(TICKET_RULES, ticket(entities=[{"name": "", "type": "person"}]), EMAIL)[
        0
    ] == ("entity_names")


def test_the_semantic_validator_reports_the_rule_in_its_code() -> None:
    context = ValidationContext(rules=INVOICE_RULES, input_text="INV-7")
    (result,) = run_validators(["semantic"], json.dumps(invoice(total=1.0)), context)
    assert not result.passed
    assert result.code == "semantic=fail(total_is_sum_of_items: total 1 != sum 7.25)"
    (unparsable,) = run_validators(["semantic"], '{"total": 1', context)
    assert unparsable.code.startswith("semantic=fail(invalid JSON")


def test_one_of_and_non_empty_rules() -> None:
    rules = TypeAdapter(list[SemanticRule]).validate_python(
        [
            {"kind": "one_of", "fields": ["line_items[*].description"], "values": ["pen", "pad"]},
            {"kind": "non_empty", "fields": ["vendor"]},
        ]
    )
    assert check_rules(rules, invoice(), "") == ("", None)
    assert check_rules(rules, invoice(vendor=""), "") == ("non_empty(vendor)", "vendor is empty")
    items = [{"description": "ink", "quantity": 1, "unit_price": 1, "amount": 1}]
    assert (
        check_rules(rules, invoice(line_items=items), "")[0] == "one_of(line_items[*].description)"
    )


def test_a_rule_with_a_bad_path_is_refused_with_the_syntax_to_use() -> None:
    with pytest.raises(ValidationError, match="is not a JMESPath expression"):
        TypeAdapter(list[SemanticRule]).validate_python(
            [{"kind": "non_empty", "fields": ["line_items[*.amount"]}]
        )
