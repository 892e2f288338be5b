"""Named schemas in the policy: loading, the Outlines adapter, and how a request selects one."""

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, Field

from tests.fakes import STACK_TIERS, SUPPORT, chat_request, completion_json, support_service
from tierserve.api.protocol import CallerContext
from tierserve.errors import ConfigError, InvalidRequestError
from tierserve.policy.spec import load_policy
from tierserve.structured import compile_check, structured_outputs_args
from tierserve.structured.registry import check_schemas

ROOT = Path(__file__).resolve().parents[3]
POLICY_DIR = ROOT / "serve_configs/policies"
INVOICE_TEXT = (
    "Invoice INV-7 from Acme, dated 2026-03-03: 2 x pen at EUR 1.50 = EUR 3.00. Total 3.00"
)
GOOD_INVOICE = json.dumps(
    {
        "vendor": "Acme",
        "invoice_number": "INV-7",
        "date": "2026-03-03",
        "currency": "EUR",
        "line_items": [{"description": "pen", "quantity": 2, "unit_price": 1.5, "amount": 3.0}],
        "total": 3.0,
    }
)
BAD_TOTAL = GOOD_INVOICE.replace('"total": 3.0', '"total": 30.0')


class Receipt(BaseModel):
    """A Pydantic model registered by import path."""

    shop: str = Field(max_length=20)
    paid: float


def write_policy(tmp_path: Path, schemas: dict[str, Any]) -> Path:
    data = yaml.safe_load((POLICY_DIR / "support.yaml").read_text())
    data["schemas"] = schemas
    shutil.copytree(POLICY_DIR / "schemas", tmp_path / "schemas")
    shutil.copytree(POLICY_DIR / "routers", tmp_path / "routers")
    (tmp_path / "support-examples.jsonl").write_text("")
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_schemas_load_from_files_and_pydantic_models_and_travel_as_data(tmp_path: Path) -> None:
    path = write_policy(
        tmp_path,
        {
            "ticket": {"json_schema_file": "schemas/ticket.json"},
            "receipt": {"pydantic_model": f"{__name__}:Receipt"},
        },
    )
    policy = load_policy(path, STACK_TIERS)
    assert policy.schemas["receipt"].schema_["properties"]["shop"]["maxLength"] == 20
    assert policy.schemas["ticket"].source.endswith("schemas/ticket.json")
    # The gateway receives the policy as plain data: it must validate without the files.
    again = type(policy).model_validate(policy.model_dump(mode="json"))
    assert again.schemas == policy.schemas
    assert again.routes == policy.routes


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"json_schema_file": "schemas/missing.json"}, "missing.json"),
        ({"pydantic_model": "no_such_module:Model"}, "'package.module:ModelClass'"),
        ({"json_schema": {"type": "objekt"}}, "not a valid JSON schema"),
        ({"rules": []}, "give one of json_schema, json_schema_file or pydantic_model"),
        (
            {"json_schema": {"type": "object"}, "json_schema_file": "schemas/ticket.json"},
            r"not \['json_schema', 'json_schema_file'\]",
        ),
    ],
)
def test_a_bad_schema_entry_is_named_with_the_fix(
    tmp_path: Path, schema: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_policy(write_policy(tmp_path, {"ticket": schema}), STACK_TIERS)
    assert "schemas.ticket" in str(caught.value)


def test_a_route_naming_an_unregistered_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="names schema 'ticket', which is not in `schemas`"):
        load_policy(
            write_policy(tmp_path, {"invoice": {"json_schema_file": "schemas/invoice.json"}}),
            STACK_TIERS,
        )


def test_outlines_adapter_gives_vllm_structured_output_args() -> None:
    args = structured_outputs_args(Receipt)
    assert set(args) == {"regex"}
    assert re.fullmatch(args["regex"], '{"shop": "Cafe", "paid": 9.99}')
    assert not re.fullmatch(args["regex"], '{"shop": "Cafe"}')  # "paid" is required
    regex = compile_check(SUPPORT.schemas["ticket"].schema_)
    assert '"C-[0-9]{4,8}"' in regex  # the id pattern is enforced while decoding


@pytest.mark.parametrize("name", ["ticket", "invoice"])
def test_constrained_output_has_no_unbounded_run(name: str) -> None:
    regex = compile_check(SUPPORT.schemas[name].schema_)
    assert "[0-9]*" not in regex and "[0-9]+" not in regex


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        ("9.99", True),
        ("0", True),
        ("-3.5", True),
        ("123456789012.123456", True),
        ("1.1111111", False),  # the looping decimal a small model wrote until max_tokens
        ("1234567890123", False),
        ("1e5", False),
        ("01", False),
    ],
)
def test_constrained_numbers_are_bounded(text: str, allowed: bool) -> None:
    regex = compile_check({"type": "object", "properties": {"n": {"type": "number"}}})
    assert bool(re.fullmatch(regex, '{"n": ' + text + "}")) is allowed
    integer_regex = compile_check({"type": "object", "properties": {"n": {"type": "integer"}}})
    is_integer = allowed and "." not in text
    assert bool(re.fullmatch(integer_regex, '{"n": ' + text + "}")) is is_integer


def test_a_schema_outlines_cannot_express_is_a_config_error() -> None:
    bad = SUPPORT.model_copy(
        update={
            "schemas": {
                "ticket": SUPPORT.schemas["ticket"].model_copy(
                    update={"json_schema": {"type": "object", "properties": {"a": {"not": {}}}}}
                )
            }
        }
    )
    with pytest.raises(ConfigError, match=r"schema 'ticket'.*Outlines cannot constrain"):
        check_schemas(bad.schemas)
    assert set(check_schemas(SUPPORT.schemas)) == {"ticket", "invoice"}


# -- selecting a schema --------------------------------------------------------------------


async def test_a_registered_schema_by_name_is_an_extraction_held_to_its_rules(
    tmp_path: Path,
) -> None:
    chat, engines, _ = support_service(
        tmp_path, answers={"medium": BAD_TOTAL, "large": GOOD_INVOICE}
    )
    body, headers = await completion_json(
        chat,
        chat_request(
            INVOICE_TEXT,
            response_format={"type": "json_schema", "json_schema": {"name": "invoice"}},
        ),
    )
    meta = body["tierserve"]
    assert meta["route"] == "extraction" and meta["output_schema"] == "invoice"
    assert meta["reasons"][0] == (
        "semantic=fail(total_is_sum_of_items: total 30 != sum 3) => escalate large"
    )
    assert meta["tier"] == "large" and body["choices"][0]["message"]["content"] == GOOD_INVOICE
    # Every step is told the schema and constrained to it (a constrained answer can still
    # break a rule the grammar cannot express: the sum of the items).
    medium_request, large_request = engines["medium"].requests[0], engines["large"].requests[0]
    assert medium_request.messages[0].role == "system"
    assert '"invoice_number"' in medium_request.messages[0].content
    assert medium_request.json_schema == large_request.json_schema
    assert large_request.json_schema == SUPPORT.schemas["invoice"].schema_
    assert headers["x-tierserve-tiers-tried"] == "medium,large"


async def test_metadata_and_header_select_a_schema_too(tmp_path: Path) -> None:
    chat, _, _ = support_service(tmp_path)
    by_metadata = await chat.explain(
        chat_request(INVOICE_TEXT, metadata={"schema": "invoice"}), CallerContext()
    )
    by_header = await chat.explain(chat_request(INVOICE_TEXT), CallerContext(schema_hint="invoice"))
    assert by_metadata["schema"] == by_header["schema"] == "invoice"
    assert by_metadata["task"]["class"] == "extraction"


async def test_an_unknown_schema_name_is_a_400_listing_the_registered_ones(tmp_path: Path) -> None:
    chat, _, _ = support_service(tmp_path)
    with pytest.raises(InvalidRequestError, match="no schema of that name") as caught:
        await completion_json(chat, chat_request("hi", metadata={"schema": "receipt"}))
    assert "['invoice', 'ticket']" in str(caught.value.hint)


async def test_a_callers_schema_that_is_not_a_schema_is_a_400(tmp_path: Path) -> None:
    chat, _, _ = support_service(tmp_path)
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}
    with pytest.raises(InvalidRequestError, match="not a valid JSON schema") as caught:
        await completion_json(chat, chat_request("hi", response_format=bad))
    assert caught.value.param == "response_format.json_schema.schema"


async def test_repeated_rule_failure_is_marked_or_reaches_a_person_when_high_risk(
    tmp_path: Path,
) -> None:
    chat, _, queue = support_service(
        tmp_path, answers=dict.fromkeys(("small", "medium", "large"), BAD_TOTAL)
    )
    fmt = {"type": "json_schema", "json_schema": {"name": "invoice"}}
    low, _ = await completion_json(chat, chat_request(INVOICE_TEXT, response_format=fmt))
    # Returned with the broken rule's fields marked for the app to review.
    assert low["tierserve"]["outcome"] == "accept"
    assert low["tierserve"]["uncertain_fields"] == ["total", "line_items"]
    assert low["tierserve"]["tiers_tried"] == ["medium", "large"]
    assert all("total_is_sum_of_items" in r for r in low["tierserve"]["reasons"])
    high, _ = await completion_json(
        chat, chat_request(INVOICE_TEXT + " This is a chargeback dispute.", response_format=fmt)
    )
    meta = high["tierserve"]
    assert meta["route"] == "extraction-high-risk" and meta["outcome"] == "human_review"
    assert meta["tiers_tried"] == ["medium", "large"] and meta["review_id"]
    (queued,) = [json.loads(line) for line in queue.path.read_text().splitlines()]
    assert queued["draft"] == BAD_TOTAL and queued["route"] == "extraction-high-risk"


async def test_a_pinned_tier_is_constrained_unless_the_caller_turns_it_off(tmp_path: Path) -> None:
    chat, engines, _ = support_service(tmp_path, answers={"small": "not json"})
    fmt = {"type": "json_schema", "json_schema": {"name": "ticket"}}
    on, _ = await completion_json(
        chat, chat_request("C-1234 broke", model="tierserve/small", response_format=fmt)
    )
    off, _ = await completion_json(
        chat,
        chat_request(
            "C-1234 broke",
            model="tierserve/small",
            response_format=fmt,
            metadata={"decoding": "unconstrained"},
        ),
    )
    assert [r.json_schema is not None for r in engines["small"].requests] == [True, False]
    assert on["tierserve"]["steps"][0]["constrained"] is True
    schema_check = off["tierserve"]["steps"][0]["validations"][0]
    assert schema_check["name"] == "schema" and not schema_check["passed"]
    assert schema_check["detail"].startswith("invalid JSON")
    # A pinned tier's answer comes back either way; the failed checks are in the reason.
    assert off["choices"][0]["message"]["content"] == "not json"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"metadata": {"decoding": "loose"}, "model": "tierserve/small"}, "not a decoding mode"),
        ({"metadata": {"decoding": "unconstrained"}}, "applies to a pinned tier only"),
    ],
)
async def test_bad_decoding_overrides_are_400s(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    chat, _, _ = support_service(tmp_path)
    with pytest.raises(InvalidRequestError, match=message):
        await completion_json(chat, chat_request("hi", **fields))
