import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import (
    SUPPORT,
    ListRecorder,
    ScriptedEngine,
    cascade_policy,
    chat_request,
    completion_json,
    support_service,
)
from tierserve.api.protocol import CallerContext, ChatCompletionRequest
from tierserve.api.service import ChatService
from tierserve.config import parse_config
from tierserve.errors import InvalidRequestError, PermissionDeniedError
from tierserve.policy.spec import Policy
from tierserve.serve.http import sse

CONFIG = parse_config(
    {
        "tiers": [
            {"name": "small", "model": "/m/small"},
            {"name": "large", "model": "/m/large"},
        ],
        "gateway": {"max_tokens_limit": 64, "default_max_tokens": 32},
        "policy": "serve_configs/policies/cascade.yaml",
    }
)
NORTHBANK = CallerContext(api_key="sk-northbank-demo")


def service(
    small_logprobs: tuple[float, ...] = (-0.01,),
) -> tuple[ChatService, dict[str, ScriptedEngine]]:
    engines = {
        "small": ScriptedEngine("small", text="small answer", logprobs=small_logprobs),
        "large": ScriptedEngine("large", text="large answer here", logprobs=(-0.01, -0.02)),
    }
    return ChatService(CONFIG, engines, policy=cascade_policy(CONFIG)), engines


async def test_response_carries_metadata_in_body_and_headers() -> None:
    chat, _ = service(small_logprobs=(-3.0,))
    body, headers = await completion_json(chat, chat_request())
    meta = body["tierserve"]
    assert body["choices"][0]["message"]["content"] == "large answer here"
    assert meta["tier"] == "large" and meta["tiers_tried"] == ["small", "large"]
    assert meta["reasons"][0] == "conf=0.05<0.50 => escalate large"
    assert meta["policy_version"] == "cascade-test" and meta["outcome"] == "accept"
    assert meta["models"] == {"small": "fake/small", "large": "fake/large"}
    assert headers["x-tierserve-tier"] == "large"
    assert headers["x-tierserve-tiers-tried"] == "small,large"
    assert headers["x-tierserve-reasons"].startswith("conf=0.05<0.50 => escalate large; ")
    assert body["usage"]["completion_tokens"] == 3  # 1 on small + 2 on large


async def test_pinned_tier_skips_the_cascade() -> None:
    chat, engines = service(small_logprobs=(-3.0,))
    body, _ = await completion_json(chat, chat_request(model="tierserve/small"))
    assert body["tierserve"]["tiers_tried"] == ["small"]
    assert engines["large"].requests == []


async def test_unknown_model_lists_the_served_ones() -> None:
    chat, _ = service()
    with pytest.raises(InvalidRequestError, match="tierserve/large") as caught:
        await completion_json(chat, chat_request(model="gpt-4"))
    assert caught.value.param == "model"


async def test_max_tokens_over_limit_is_refused() -> None:
    chat, _ = service()
    with pytest.raises(InvalidRequestError, match="at most 64"):
        await completion_json(chat, chat_request(max_tokens=65))


async def test_defaults_fill_max_tokens_and_greedy_temperature() -> None:
    chat, engines = service()
    await completion_json(chat, chat_request())
    sent = engines["small"].requests[0]
    assert sent.max_tokens == 32 and sent.temperature == 0.0


async def test_stream_is_openai_sse_with_metadata_last() -> None:
    chat, _ = service(small_logprobs=(-3.0,))
    reply = await chat.stream(chat_request(stream=True, stream_options={"include_usage": True}))
    assert reply.headers["x-tierserve-tier"] == "large"
    frames = [frame async for frame in sse(reply.chunks)]
    assert frames[-1] == "data: [DONE]\n\n"
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "large answer here"
    final = next(c for c in chunks if c.get("tierserve"))
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["tierserve"]["tiers_tried"] == ["small", "large"]
    assert chunks[-1]["usage"]["total_tokens"] == 17


def test_n_greater_than_one_is_refused_with_reason() -> None:
    with pytest.raises(ValueError, match="only n=1"):
        chat_request(n=2)


async def test_regulated_tenant_is_never_served_by_small(tmp_path: Path) -> None:
    chat, engines, _ = support_service(tmp_path)
    body, _ = await completion_json(chat, chat_request("How do I reset my password?"), NORTHBANK)
    meta = body["tierserve"]
    assert meta["tenant"] == "northbank" and "small" not in meta["tiers_tried"]
    assert engines["small"].requests == []
    with pytest.raises(PermissionDeniedError, match="may not use tier 'small'"):
        await completion_json(chat, chat_request("hi", model="tierserve/small"), NORTHBANK)


async def test_policy_sensitive_request_ends_in_human_review(tmp_path: Path) -> None:
    chat, _, queue = support_service(
        tmp_path, answers={"large": ""}
    )  # an empty answer fails non_empty
    body, headers = await completion_json(chat, chat_request("Draft a reply promising a refund"))
    meta = body["tierserve"]
    assert meta["route"] == "policy-sensitive" and meta["outcome"] == "human_review"
    assert headers["x-tierserve-outcome"] == "human_review"
    assert body["choices"][0]["message"]["content"] == SUPPORT.human_review_message
    (queued,) = queue.read()
    assert queued["review_id"] == meta["review_id"] and queued["route"] == "policy-sensitive"


async def test_session_keeps_the_tier_it_escalated_to(tmp_path: Path) -> None:
    chat, engines, _ = support_service(tmp_path)
    engines["small"].logprobs = (-3.0,)
    session = CallerContext(session_id="s-1")
    first, _ = await completion_json(chat, chat_request("How do I reset my password?"), session)
    assert first["tierserve"]["tiers_tried"] == ["small", "medium"]
    engines["small"].logprobs = (-0.01,)
    second, _ = await completion_json(chat, chat_request("And my username?"), session)
    assert "small" not in second["tierserve"]["tiers_tried"]
    assert any(r.startswith("risk=high(session_escalated") for r in second["tierserve"]["plan"])


async def test_a_session_id_is_scoped_to_the_caller_that_set_it(tmp_path: Path) -> None:
    chat, engines, _ = support_service(tmp_path)
    engines["small"].logprobs = (-3.0,)
    escalated = CallerContext(api_key="sk-app-1", session_id="s-1")
    await completion_json(chat, chat_request("How do I reset my password?"), escalated)
    engines["small"].logprobs = (-0.01,)
    same_id = CallerContext(api_key="sk-app-2", session_id="s-1")
    other, _ = await completion_json(chat, chat_request("And my username?"), same_id)
    assert other["tierserve"]["tiers_tried"] == ["small"]
    again, _ = await completion_json(chat, chat_request("And my username?"), escalated)
    assert "small" not in again["tierserve"]["tiers_tried"]


async def test_explain_returns_the_plan_without_generating(tmp_path: Path) -> None:
    chat, engines, _ = support_service(tmp_path)
    plan = await chat.explain(
        chat_request("Please extract the fields from this email: C-9 was billed twice"),
        CallerContext(),
    )
    assert plan["route"] == "extraction" and plan["summary"] == "task=extraction,risk=low => medium"
    assert plan["steps"][0] == {
        "tier": "medium",
        "constrained": True,
        "validators": ["schema", "semantic"],
        "max_tokens": 512,
        "review_field_confidence": {"severity": 0.8, "incident_date": 0.6, "full_name": 0.6},
    }
    assert plan["schema"] == "ticket"
    assert plan["steps"][1]["constrained"] is True
    with_email = await chat.explain(
        chat_request("Extract the fields from this email from ann@example.com"), CallerContext()
    )
    assert with_email["steps"][0]["tier"] == "medium"
    assert "pii=email => tiers medium,large" in with_email["reasons"]
    assert all(not e.requests for e in engines.values())


async def test_bad_task_hint_is_a_400(tmp_path: Path) -> None:
    chat, _, _ = support_service(tmp_path)
    with pytest.raises(InvalidRequestError, match="task hint is not a task class"):
        await completion_json(chat, chat_request("hi", metadata={"task": "poetry"}))


def one_field_schema(name: str, field: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: field}, "required": [name]}


def with_schema(text: str, schema: dict[str, Any]) -> ChatCompletionRequest:
    """A request whose caller sends its own schema in response_format."""
    own = {"name": "own", "schema": schema}
    return chat_request(text, response_format={"type": "json_schema", "json_schema": own})


async def test_requested_json_schema_is_extraction_and_checked_on_every_step(
    tmp_path: Path,
) -> None:
    chat, engines, _ = support_service(
        tmp_path, answers={"medium": "not json", "large": '{"answer": "42"}'}
    )
    # (the extraction route starts on medium: see support.yaml)
    schema = one_field_schema("answer", {"type": "string"})
    body, _ = await completion_json(chat, with_schema("How do I reset my password?", schema))
    meta = body["tierserve"]
    # A caller's schema is an extraction request whatever its wording: the cheap-first ladder.
    assert meta["task"] == "extraction" and meta["route"] == "extraction"
    assert meta["tiers_tried"] == ["medium", "large"]
    first_checks = {v["name"]: v for v in meta["steps"][0]["validations"]}
    assert not first_checks["schema"]["passed"]
    assert first_checks["schema"]["detail"].startswith("invalid JSON")
    assert meta["steps"][0]["failed_validators"] == ["schema"]  # semantic: no rules to break
    assert meta["steps"][0]["failure"] == "validator"
    assert (
        meta["tier"] == "large" and body["choices"][0]["message"]["content"] == '{"answer": "42"}'
    )
    # Constrained on every step, held to the caller's schema rather than the route's own, with
    # the format checks that stand in for a caller's missing rules.
    tried = engines["medium"].requests + engines["large"].requests
    assert [r.json_schema for r in tried] == [schema, schema]
    assert all(s["constrained"] for s in meta["steps"])
    assert {"dates", "emails", "currencies", "source_numbers"} <= set(
        meta["steps"][0]["validators"]
    )


async def test_replay_holds_a_logged_callers_schema_to_the_same_format_checks(
    tmp_path: Path,
) -> None:
    """Medium's date fails a format check only a caller's own schema gets; replaying the record
    under the policy that made it must escalate just as serving did."""
    from tierserve.evaluate.replay import replay_one

    recorder = ListRecorder()
    chat, _, _ = support_service(
        tmp_path,
        recorder=recorder,
        answers={"medium": '{"date": "2026-05-04"}', "large": '{"date": "2026-05-03"}'},
    )
    schema = one_field_schema("date", {"type": "string", "format": "date"})
    body, _ = await completion_json(chat, with_schema("Delivered on 3 May 2026", schema))
    assert body["tierserve"]["tiers_tried"] == ["medium", "large"]
    assert body["tierserve"]["steps"][0]["failed_validators"] == ["dates"]
    (logged,) = recorder.records
    assert logged.output_schema is not None and logged.output_schema.startswith("own:")
    # (Without field gates: the scripted engines report no field signals to judge.)
    data = SUPPORT.model_dump(mode="json", by_alias=True)
    for step in next(r for r in data["routes"] if r["name"] == "extraction")["ladder"]:
        step.update(min_field_confidence=None, review_field_confidence={})
    walked = replay_one(Policy.model_validate(data), logged).reason
    assert walked.startswith("dates=fail(date: day not in the source) => escalate large")


def test_json_schema_format_without_a_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a json_schema"):
        chat_request(response_format={"type": "json_schema"})


async def test_ignore_eos_reaches_the_engine_for_fixed_length_benchmarks() -> None:
    chat, engines = service()
    await completion_json(chat, chat_request(ignore_eos=True))
    assert engines["small"].requests[0].ignore_eos is True


@pytest.mark.parametrize("role", ["system", "developer", "assistant"])
async def test_personal_data_in_any_message_keeps_the_small_tier_out(
    tmp_path: Path, role: str
) -> None:
    chat, engines, _ = support_service(tmp_path)
    messages = [
        {"role": role, "content": "Customer record: jane.doe@example.com, card on file."},
        {"role": "user", "content": "How do I reset my password?"},
    ]
    body, _ = await completion_json(chat, chat_request(messages=messages))
    assert engines["small"].requests == []
    meta = body["tierserve"]
    assert "pii=email => tiers medium,large" in meta["plan"]
    # The facts the codes render, typed for clients: no code needs parsing.
    assert meta["skipped_tiers"] == ["small"] and meta["task_source"] == "classifier"
