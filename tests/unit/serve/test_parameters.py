"""Every chat-completions parameter is served or refused with a 400 naming it: sampling
parameters reach the tier, log-probabilities come back in OpenAI's shape, unknown fields and
unsupported features are refused, and /v1/models answers per model."""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fakes import FAQ, http_client, support_service
from tierserve.engine.types import GenerationRequest

CHAT: dict[str, Any] = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}]}


def gateway(tmp_path: Path) -> tuple[TestClient, dict[str, Any]]:
    chat, engines, _ = support_service(tmp_path, answers={"small": "Paris is the capital"})
    return http_client(chat, tiers=engines), engines


def test_sampling_parameters_reach_the_tier(tmp_path: Path) -> None:
    client, engines = gateway(tmp_path)
    body = {
        **CHAT,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.25,
        "logit_bias": {"1234": -100, "42": 5},
        "top_k": 20,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
        "min_tokens": 2,
        "seed": 7,
        "top_p": 0.9,
        "temperature": 0.3,
        "store": False,
        "service_tier": "auto",
        "modalities": ["text"],
        "safety_identifier": "end-user-7",
    }
    assert client.post("/v1/chat/completions", json=body).status_code == 200
    sent: GenerationRequest = engines["small"].requests[0]
    assert (sent.frequency_penalty, sent.presence_penalty) == (0.5, -0.25)
    assert sent.logit_bias == {1234: -100.0, 42: 5.0}
    assert (sent.top_k, sent.min_p, sent.repetition_penalty, sent.min_tokens) == (20, 0.05, 1.1, 2)
    assert (sent.seed, sent.top_p, sent.temperature) == (7, 0.9, 0.3)
    assert sent.top_logprobs is None  # not asked: only the gate's values are computed


def test_logprobs_come_back_in_openai_s_shape(tmp_path: Path) -> None:
    client, engines = gateway(tmp_path)
    body = {**CHAT, "logprobs": True, "top_logprobs": 2}
    answer = client.post("/v1/chat/completions", json=body).json()
    assert engines["small"].requests[0].top_logprobs == 2
    content = answer["choices"][0]["logprobs"]["content"]
    assert "".join(t["token"] for t in content) == answer["choices"][0]["message"]["content"]
    first = content[0]
    assert first["token"] == "Paris " and first["bytes"] == list(b"Paris ")
    assert [t["token"] for t in first["top_logprobs"]] == ["Paris ", "~"]
    assert first["top_logprobs"][1]["logprob"] == pytest.approx(first["logprob"] - 1.0)
    plain = client.post("/v1/chat/completions", json=CHAT).json()
    assert plain["choices"][0]["logprobs"] is None


def test_a_stream_carries_each_chunk_s_logprobs(tmp_path: Path) -> None:
    client, _ = gateway(tmp_path)
    body = {**CHAT, "model": "tierserve/small", "stream": True, "logprobs": True}
    events = [
        json.loads(line.removeprefix("data: "))
        for line in client.post("/v1/chat/completions", json=body).text.split("\n\n")
        if line.startswith("data: {")
    ]
    texts = [e["choices"][0]["delta"].get("content", "") for e in events if e["choices"]]
    tokens = [
        t["token"]
        for e in events
        if e["choices"] and e["choices"][0].get("logprobs")
        for t in e["choices"][0]["logprobs"]["content"]
    ]
    assert "".join(tokens) == "".join(texts) == "Paris is the capital"
    assert all(
        t["top_logprobs"] == []
        for e in events
        if e["choices"] and e["choices"][0].get("logprobs")
        for t in e["choices"][0]["logprobs"]["content"]
    )


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"tempreature": 0.2}, "tempreature", "unknown parameter"),
        ({"best_of": 2}, "best_of", "unknown parameter"),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools",
            "no tier of this stack can call tools",
        ),
        ({"functions": [{"name": "f"}]}, "functions", "send tools instead"),
        ({"audio": {"voice": "alloy"}}, "audio", "text-only"),
        ({"modalities": ["text", "audio"]}, "modalities", "modalities=['text']"),
        ({"store": True}, "store", "store=False"),
        ({"reasoning_effort": "high"}, "reasoning_effort", "not reasoning models"),
        ({"prediction": {"type": "content", "content": "x"}}, "prediction", "predicted"),
        ({"top_logprobs": 3}, None, "top_logprobs needs logprobs"),
        ({"logit_bias": {"hello": 1}}, "logit_bias", "token ids"),
        ({"logit_bias": {"12": 250}}, "logit_bias", "-100 to 100"),
        ({"frequency_penalty": 3}, "frequency_penalty", "less than or equal to 2"),
        ({"min_tokens": 40, "max_tokens": 30}, "min_tokens", "min_tokens=40 exceeds max_tokens=30"),
        ({"min_tokens": 17592186044417}, "min_tokens", "exceeds max_tokens=256"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ]
            },
            "messages",
            "text-only",
        ),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else None,
)
def test_what_is_not_served_is_refused_naming_it(
    tmp_path: Path, extra: dict[str, Any], param: str | None, words: str
) -> None:
    client, engines = gateway(tmp_path)
    refused = client.post("/v1/chat/completions", json={**CHAT, **extra})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert words in error["message"], error
    if param is not None:
        assert error["param"] == param and param in error["message"]
    assert all(engine.requests == [] for engine in engines.values())


def test_each_model_is_listed_and_found_by_its_id(tmp_path: Path) -> None:
    client, _ = gateway(tmp_path)
    listed = client.get("/v1/models").json()["data"]
    assert [m["id"] for m in listed] == [
        "tierserve",
        "tierserve/small",
        "tierserve/medium",
        "tierserve/large",
    ]
    one = client.get("/v1/models/tierserve/small").json()
    assert one == next(m for m in listed if m["id"] == "tierserve/small")
    assert one["created"] == client.get("/v1/models").json()["data"][1]["created"]
    missing = client.get("/v1/models/gpt-4o")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"
    chat = client.post("/v1/chat/completions", json={**CHAT, "model": "gpt-4o"})
    assert chat.status_code == 404 and chat.json()["error"]["code"] == "model_not_found"
    assert client.get("/health").json() == client.get("/healthz").json()


def test_a_message_no_model_wrote_has_no_logprobs(tmp_path: Path) -> None:
    client, _ = gateway(tmp_path)
    body = {**CHAT, "logprobs": True, "metadata": {"task": "policy_sensitive"}}
    answer = client.post("/v1/chat/completions", json=body).json()
    assert answer["tierserve"]["outcome"] == "human_review"
    assert answer["choices"][0]["logprobs"] is None


def test_a_step_s_smaller_budget_bounds_min_tokens_too(tmp_path: Path) -> None:
    """A route step may give a tier fewer tokens than the caller allowed; the engine refuses a
    minimum above the maximum, so the step's budget caps both (found by the API fuzzer: a
    503 where the step's 32 tokens met min_tokens 40)."""
    import yaml

    from tests.fakes import STACK_TIERS, THREE, FaqPredictor, policy_data
    from tierserve.api.service import ChatService
    from tierserve.policy.spec import load_policy

    data = policy_data()
    faq = next(r for r in data["routes"] if r["name"] == "faq")
    faq["ladder"][0]["max_tokens"] = 32
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    _, engines, _ = support_service(tmp_path, answers={"small": "Paris is the capital"})
    policy = load_policy(path, STACK_TIERS)
    capped = ChatService(THREE, engines, policy=policy, predictor=FaqPredictor())
    client = http_client(capped, tiers=engines)
    answered = client.post("/v1/chat/completions", json={**CHAT, "min_tokens": 40})
    assert answered.status_code == 200, answered.text
    sent: GenerationRequest = engines["small"].requests[0]
    assert (sent.max_tokens, sent.min_tokens) == (32, 32)
