"""Schema-strict extraction through the real stack and the official openai client."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openai import OpenAI

from tierserve.config import StackConfig
from tierserve.evaluate.replay import replay, replay_one
from tierserve.observe.decision_log import DecisionLog, LogQuery
from tierserve.policy.spec import Policy
from tierserve.review import JsonlReviewQueue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TEXTS = {
    "ticket": "Extract the ticket fields from this email: Hi, customer C-20417 here. My Atlas "
    "laptop (order A551023) stopped charging on 2026-03-03. Please help, it is urgent.",
    "invoice": "Extract the invoice fields: Acme Office Supply, invoice INV-2026301 dated "
    "2026-04-02. 2 x Toner cartridge at EUR 79.00 = EUR 158.00. TOTAL DUE: EUR 158.00",
}
NO_ID = (
    "Extract the ticket fields from this email: Hello, the app crashes at login every time I "
    "open it. Can you help?"
)


def meta_of(completion: Any) -> dict[str, Any]:
    return dict((completion.model_extra or {})["tierserve"])


def extract(client: OpenAI, text: str, schema: str, model: str = "tierserve") -> Any:
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        temperature=0,
        max_tokens=512,
        response_format={"type": "json_schema", "json_schema": {"name": schema}},
    )


@pytest.mark.parametrize("schema", ["ticket", "invoice"])
@pytest.mark.parametrize("tier", ["small", "medium", "large"])
def test_every_tier_returns_json_that_validates_against_the_schema(
    client: OpenAI, policy: Policy, tier: str, schema: str
) -> None:
    completion = extract(client, TEXTS[schema], schema, model=f"tierserve/{tier}")
    meta = meta_of(completion)
    assert meta["output_schema"] == schema and meta["steps"][0]["constrained"]
    answer = json.loads(completion.choices[0].message.content or "")
    validator = Draft202012Validator(
        policy.schemas[schema].schema_, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    assert list(validator.iter_errors(answer)) == []
    assert completion.choices[0].finish_reason == "stop"


def test_a_callers_own_schema_constrains_a_routed_request(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Lyon", "Nice"]}},
        "required": ["city"],
    }
    completion = client.chat.completions.create(
        model="tierserve",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=32,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )
    meta = meta_of(completion)
    # Named by its content's hash, not by the caller's name for it (nothing a caller sends is
    # repeated in records and headers).
    assert meta["output_schema"].startswith("own:")
    assert all(s["constrained"] for s in meta["steps"])
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris"}


def test_a_semantic_rule_failure_escalates_with_its_reason_then_marks_the_field(
    client: OpenAI, policy: Policy
) -> None:
    # No customer id in the text: the schema's id pattern makes a constrained model write one,
    # and the rule that ids are copied from the input rejects it on every tier. The last
    # answer is returned with the invented field marked for the app to show for review.
    completion = extract(client, NO_ID, "ticket")
    meta = meta_of(completion)
    assert meta["route"] == "extraction"
    assert meta["tiers_tried"] == ["medium", "large"]
    medium, large = meta["steps"][0], meta["steps"][1]
    assert medium["constrained"] and large["constrained"]
    assert "semantic=fail(customer_id_copied: customer_id=" in medium["reason"]
    assert medium["reason"].endswith("=> escalate large")
    assert "semantic=fail(customer_id_copied" in large["reason"]
    assert large["reason"].endswith("last step => accept")
    assert meta["outcome"] == "accept" and meta["tier"] == "large"
    assert "customer_id" in meta["uncertain_fields"]
    assert json.loads(completion.choices[0].message.content or "")["customer_id"].startswith("C-")


def test_a_repeated_failure_on_a_high_risk_request_reaches_human_review(
    client: OpenAI, policy: Policy, stack_config: StackConfig
) -> None:
    completion = extract(client, NO_ID + " Otherwise I will file a chargeback.", "ticket")
    meta = meta_of(completion)
    assert (meta["route"] == "extraction-high-risk" and "keyword:chargeback" in meta["risk"]) or (
        any("keyword:chargeback" in reason for reason in meta["plan"])
    )
    assert meta["tiers_tried"] == ["medium", "large"]
    assert all("semantic=fail(customer_id_copied" in r for r in meta["reasons"][:2])
    assert meta["outcome"] == "human_review"
    assert completion.choices[0].message.content == policy.human_review_message
    queued = JsonlReviewQueue(stack_config.gateway.review_queue_path).read()
    item = next(q for q in queued if q["review_id"] == meta["review_id"])
    assert item["route"] == "extraction-high-risk" and item["draft_tier"] == "large"
    assert json.loads(item["draft"])["customer_id"].startswith("C-")


CALLER_INVOICE = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "invoice_date": {"type": "string", "description": "ISO 8601 date, YYYY-MM-DD"},
        "currency": {"type": "string", "description": "ISO 4217 currency code"},
        "total": {"type": "number"},
    },
    "required": ["vendor", "invoice_date", "currency", "total"],
    "additionalProperties": False,
}


def test_a_callers_schema_gets_the_extraction_ladder_with_field_signals_logged_and_replayable(
    client: OpenAI, policy: Policy, stack_config: StackConfig
) -> None:
    # No "extract" in the wording: the schema alone makes it an extraction.
    started = time.time()
    completion = client.chat.completions.create(
        model="tierserve",
        messages=[
            {"role": "user", "content": "Acme GmbH, invoice of 3 March 2026. Due: €1,249.50."}
        ],
        temperature=0,
        max_tokens=200,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "invoice_head", "schema": CALLER_INVOICE},
        },
    )
    meta = meta_of(completion)
    assert meta["task"] == "extraction" and meta["route"] == "extraction"
    assert meta["tiers_tried"][0] == "medium" and all(s["constrained"] for s in meta["steps"])
    first = meta["steps"][0]
    # One reading per field, from the tokens of its value only.
    assert {f["path"] for f in first["fields"]} == set(CALLER_INVOICE["properties"])
    assert all(0.0 <= f["confidence"] <= 1.0 and f["tokens"] >= 1 for f in first["fields"])
    assert {"dates", "emails", "currencies", "source_numbers"} <= {
        v["name"] for v in first["validations"]
    }
    assert isinstance(meta["uncertain_fields"], list)
    record = next(
        r
        for r in DecisionLog(stack_config.observe.decision_log_path).query(
            LogQuery(since=started - 1)
        )
        if r.request_id == completion.id
    )
    assert [f.confidence for f in record.steps[0].fields] == [
        f["confidence"] for f in first["fields"]
    ]
    # Replay re-judges the recorded fields: the served policy reaches the served decision, and
    # a stricter field threshold on medium escalates naming its least sure field, without a
    # new generation.
    assert replay(policy, [record]).answer_source_changed == 0
    weakest = min(record.steps[0].fields, key=lambda f: f.confidence)
    assert weakest.confidence < 1.0  # raw log-probabilities: a model is never sure of all
    data = policy.model_dump(by_alias=True)
    extraction = next(r for r in data["routes"] if r["name"] == "extraction")
    extraction["ladder"][0]["min_field_confidence"] = min(1.0, weakest.confidence + 1e-6)
    stricter = Policy.model_validate(data)
    first_verdict = replay_one(stricter, record).reason.split(";")[0]
    assert "fields<" in first_verdict and f"{weakest.path}=" in first_verdict
    assert first_verdict.endswith("=> escalate large")
