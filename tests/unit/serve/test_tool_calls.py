"""Tool calls through the ladder, on scripted tiers: tools reach the tier, calls come back in
OpenAI's shape (whole and streamed), a tool turn is accepted, and an invalid or missing call
escalates with a ``tool_args`` reason code in the metadata, the record and the metrics."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.fakes import SUPPORT, ListRecorder, ScriptedEngine, http_client, three_tiers
from tests.fakes import WEATHER_TOOL as WEATHER
from tierserve.api.service import ChatService
from tierserve.config import parse_config
from tierserve.engine.types import ToolCall
from tierserve.observe.metrics import TierserveMetrics
from tierserve.validate import ProposedCall, ToolContract
from tierserve.validate.tool_args import check_tool_args

ASK = {
    "model": "tierserve",
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
    "tools": [WEATHER],
}
GOOD = ToolCall("call-1", "get_weather", '{"city": "Paris"}')
BAD_ENUM = ToolCall("call-1", "get_weather", '{"city": "Paris", "unit": "kelvin"}')
CALLING = parse_config(
    {
        "tiers": [
            {"name": name, "model": f"/m/{name}", "tool_call_parser": "hermes"}
            for name in ("small", "medium", "large")
        ],
        "policy": "serve_configs/policies/support.yaml",
    }
)


class Recording:
    """The decision log's recorder, reduced to a list, beside the real metrics."""

    def __init__(self, metrics: TierserveMetrics) -> None:
        self.records = ListRecorder()
        self._metrics = metrics

    async def record(self, record: Any) -> None:
        await self.records.record(record)
        self._metrics.observe(record)


def gateway(
    small: ScriptedEngine | None = None,
) -> tuple[TestClient, dict[str, ScriptedEngine], ListRecorder, CollectorRegistry]:
    engines = {
        "small": small or ScriptedEngine("small", text="", calls=(GOOD,)),
        "medium": ScriptedEngine("medium", text="", calls=(GOOD,)),
        "large": ScriptedEngine("large", text="", calls=(GOOD,)),
    }
    registry = CollectorRegistry()
    metrics = TierserveMetrics(registry)
    recording = Recording(metrics)
    chat = ChatService(CALLING, engines, policy=SUPPORT, recorder=recording)
    return http_client(chat, metrics=metrics), engines, recording.records, registry


def test_a_valid_call_from_the_small_tier_comes_back_in_openai_s_shape() -> None:
    client, engines, recorder, _ = gateway()
    answer = client.post("/v1/chat/completions", json=ASK).json()
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "call-1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert answer["tierserve"]["route"] == "tools" and answer["tierserve"]["task"] == "tool_use"
    assert answer["tierserve"]["tier"] == "small"
    assert engines["small"].requests[0].tools == (WEATHER,)
    (record,) = recorder.records
    assert record.steps[0].reason.endswith("=> accept small")
    assert [v.code for v in record.steps[0].validations] == [
        "non_empty=ok(tool calls)",
        "tool_args=ok(get_weather)",
    ]


@pytest.mark.parametrize(
    ("small", "detail"),
    [
        (ScriptedEngine("small", text="", calls=(BAD_ENUM,)), "get_weather: /unit enum"),
        (ScriptedEngine("small", text="It is sunny."), None),
        (ScriptedEngine("small", text="<tool_call>{", unreadable_call=True), "unreadable call"),
        (
            ScriptedEngine("small", text="", calls=(ToolCall("c", "get_weather", "{'city'"),)),
            "get_weather: arguments not JSON at char 1",
        ),
        (ScriptedEngine("small", text="", calls=(ToolCall("c", "rm_rf", "{}"),)), "not offered"),
    ],
    ids=["schema", "no call, required", "unreadable", "not json", "unknown tool"],
)
def test_an_invalid_or_missing_call_escalates_with_its_reason_everywhere(
    small: ScriptedEngine, detail: str | None
) -> None:
    client, _, recorder, registry = gateway(small)
    body = {**ASK, "tool_choice": "required"}
    answer = client.post("/v1/chat/completions", json=body).json()
    meta = answer["tierserve"]
    assert meta["tier"] == "medium" and meta["tiers_tried"] == ["small", "medium"]
    reason = meta["reasons"][0]
    assert reason.startswith("tool_args=fail(") and reason.endswith("=> escalate medium")
    if detail is not None:
        assert detail in reason
    assert answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    (record,) = recorder.records
    assert record.steps[0].failed_validators == ("tool_args",)
    assert record.steps[0].reason == reason
    failures = registry.get_sample_value(
        "tierserve_validator_failures_total", {"tier": "small", "validator": "tool_args"}
    )
    assert failures == 1


def test_with_tool_choice_auto_a_text_answer_is_an_answer() -> None:
    client, _, _, _ = gateway(ScriptedEngine("small", text="It is sunny in Paris."))
    answer = client.post("/v1/chat/completions", json=ASK).json()
    assert answer["choices"][0]["message"]["content"] == "It is sunny in Paris."
    assert (
        answer["choices"][0]["finish_reason"] == "stop" and answer["tierserve"]["tier"] == "small"
    )


def test_a_streamed_call_arrives_whole_in_one_delta_after_the_gate() -> None:
    client, _, _, _ = gateway(ScriptedEngine("small", text="", calls=(BAD_ENUM,)))
    text = client.post("/v1/chat/completions", json={**ASK, "stream": True}).text
    events = [json.loads(line[6:]) for line in text.split("\n\n") if line.startswith("data: {")]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    calls = [d["tool_calls"] for d in deltas if "tool_calls" in d]
    assert calls == [
        [
            {
                "index": 0,
                "id": "call-1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ]
    ]
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1]["tierserve"]["tier"] == "medium" and text.endswith("data: [DONE]\n\n")


def test_the_follow_up_turn_with_the_tool_s_result_is_accepted() -> None:
    client, engines, _, _ = gateway(ScriptedEngine("small", text="It is 18 degrees in Paris."))
    follow_up = {
        **ASK,
        "messages": [
            *ASK["messages"],
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call-1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call-1", "content": '{"celsius": 18}'},
        ],
    }
    answer = client.post("/v1/chat/completions", json=follow_up).json()
    assert answer["choices"][0]["message"]["content"] == "It is 18 degrees in Paris."
    sent = engines["small"].requests[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "tool"]
    assert sent[1].tool_calls == (GOOD,) and sent[2].tool_call_id == "call-1"


def test_tiers_without_a_tool_parser_are_skipped_with_a_reason(tmp_path: Path) -> None:
    only_large = three_tiers()  # no tier calls tools ...
    only_large.tiers[2] = only_large.tiers[2].model_copy(update={"tool_call_parser": "hermes"})
    engines = {n: ScriptedEngine(n, text="", calls=(GOOD,)) for n in ("small", "medium", "large")}
    chat = ChatService(only_large, engines, policy=SUPPORT)
    client = http_client(chat)
    answer = client.post("/v1/chat/completions", json=ASK).json()
    assert answer["tierserve"]["tiers_tried"] == ["large"]
    assert "tools => skip small,medium" in answer["tierserve"]["plan"]
    pinned = client.post("/v1/chat/completions", json={**ASK, "model": "tierserve/small"})
    assert pinned.status_code == 400 and pinned.json()["error"]["param"] == "tools"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "not among tools"),
        ({"tools": [WEATHER, WEATHER]}, "share a name"),
        (
            {
                "tools": [
                    {**WEATHER, "function": {**WEATHER["function"], "parameters": {"type": 5}}}
                ]
            },
            "tools.0.function.parameters is not a valid JSON schema",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "user", "content": None}]}, "messages.0.user.content"),
    ],
    ids=["named choice", "duplicate", "bad schema", "tool turn", "null content"],
)
def test_malformed_tool_requests_are_400s_naming_the_problem(
    change: dict[str, Any], words: str
) -> None:
    client, engines, _, _ = gateway()
    refused = client.post("/v1/chat/completions", json={**ASK, **change})
    assert refused.status_code == 400 and words in refused.json()["error"]["message"]
    assert all(e.requests == [] for e in engines.values())


def test_the_check_itself() -> None:
    offered = ToolContract({"f": {"type": "object", "required": ["a"]}}, "auto", parallel=False)
    good = ProposedCall("f", '{"a": 1}')
    assert check_tool_args([good], False, offered) == (True, "f")
    assert check_tool_args([], False, offered) == (True, "no call")
    assert check_tool_args([good, good], False, offered)[1] == (
        "2 calls, parallel_tool_calls is false"
    )
    assert check_tool_args([ProposedCall("f", "{}")], False, offered) == (False, "f: / required")
    assert check_tool_args([ProposedCall("f", "[1]")], False, offered)[1] == (
        "f: arguments not an object"
    )
    named = ToolContract({"f": None, "g": None}, "g")
    assert check_tool_args([ProposedCall("f", "{}")], False, named) == (
        False,
        "f called, g required",
    )


def test_a_call_written_without_the_parser_s_tags_is_still_read() -> None:
    from tierserve.engine.tool_parsing import bare_call, template_message
    from tierserve.engine.types import ChatMessage

    call = bare_call('{"name": "get_weather", "arguments": {"city": "Lima"}}')
    assert call is not None and (call.name, call.arguments) == ("get_weather", '{"city": "Lima"}')
    fenced = bare_call('```json\n{"name": "f", "arguments": {}}\n```')
    assert fenced is not None and fenced.name == "f"
    assert bare_call('{"name": "f"}') is None  # not a call's shape
    assert bare_call('The answer is {"name": "f", "arguments": {}}') is None
    assert bare_call('{"name": "f", "arguments": {"a": 1') is None  # broken: the gate says so
    replayed = template_message(ChatMessage("assistant", "", (GOOD,)))
    assert replayed["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
