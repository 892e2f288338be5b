"""The gateway's HTTP app over a ChatService with scripted engines: status codes, error bodies,
SSE framing and the stream's commit promise. (The real stack is tested in tests/integration.)"""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tests.fakes import FAQ, ListRecorder, http_client, support_service
from tierserve.errors import ContextLengthError
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.recorder import DurableRecorder

CHAT = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}]}


def app_client(
    tmp_path: Path, recorder: object = None, down: str | None = None
) -> tuple[TestClient, TierserveMetrics]:
    chat, _, _ = support_service(tmp_path, recorder=recorder)  # type: ignore[arg-type]
    metrics = TierserveMetrics(CollectorRegistry())
    tiers = ("small", "medium", "large")
    return http_client(chat, tiers=tiers, down=down, metrics=metrics), metrics


def frames(text: str) -> list[str]:
    return [line.removeprefix("data: ") for line in text.split("\n\n") if line]


def test_a_chat_completion_carries_its_decision_in_body_and_headers(tmp_path: Path) -> None:
    client, _ = app_client(tmp_path)
    response = client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"]
    assert response.headers["x-tierserve-tier"] == body["tierserve"]["tier"] == "small"
    assert response.headers["x-tierserve-outcome"] == "accept"
    assert body["tierserve"]["steps"][0]["validations"][0] == {
        "name": "non_empty",
        "passed": True,
        "detail": "",
        "fields": [],
    }


def test_a_bad_body_is_a_400_naming_the_field_and_the_fix(tmp_path: Path) -> None:
    client, metrics = app_client(tmp_path)
    response = client.post("/v1/chat/completions", json={**CHAT, "temperature": 9})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "temperature" and "fix:" in error["message"]
    sample = metrics.request_errors.labels("invalid_request_error", "400")
    assert sample._value.get() == 1


def test_a_stream_is_sse_with_the_committed_decision_before_done(tmp_path: Path) -> None:
    recorder = ListRecorder()
    client, _ = app_client(tmp_path, recorder)
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-tierserve-tier"] == "small"
        events = frames(response.read().decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    final = next(c for c in chunks if c.get("tierserve"))
    assert final["choices"][0]["finish_reason"] == "stop"
    (committed,) = recorder.records
    assert final["tierserve"]["request_id"] == committed.request_id
    assert chunks[-1]["usage"]["total_tokens"] > 0 and chunks[-1]["choices"] == []
    assert all("usage" not in c for c in chunks[:-1])


def test_a_stream_whose_record_cannot_be_committed_ends_with_an_error_and_no_done(
    tmp_path: Path,
) -> None:
    log = DecisionLog(tmp_path / "d.sqlite")
    log.close()  # writes now fail, as on a full or lost disk
    metrics = TierserveMetrics(CollectorRegistry())
    client, app_metrics = app_client(tmp_path, DurableRecorder(log, metrics))
    with client.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as response:
        events = frames(response.read().decode())
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "decision_log_unavailable" and error["type"] == "server_error"
    assert not any(json.loads(e).get("tierserve") for e in events[:-1])
    assert app_metrics.request_errors.labels("server_error", "503")._value.get() == 1
    plain = client.post("/v1/chat/completions", json=CHAT)
    assert plain.status_code == 503 and plain.json()["error"]["code"] == "decision_log_unavailable"
    assert plain.headers["retry-after"] == "2"  # retryable: the caller is told when


def test_a_caller_error_carries_no_retry_after(tmp_path: Path) -> None:
    client, _ = app_client(tmp_path)
    response = client.post("/v1/chat/completions", json={**CHAT, "stop": [""]})
    assert response.status_code == 400 and "retry-after" not in response.headers


def test_models_and_health_report_each_tier(tmp_path: Path) -> None:
    client, _ = app_client(tmp_path, down="large")
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids == ["tierserve", "tierserve/small", "tierserve/medium", "tierserve/large"]
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["tiers"]["large"].startswith("unavailable")


def test_each_app_is_its_own(tmp_path: Path) -> None:
    first, first_metrics = app_client(tmp_path / "a")
    second, second_metrics = app_client(tmp_path / "b")
    assert first.app is not second.app
    first.post("/v1/chat/completions", json={**CHAT, "n": 2})
    assert first_metrics.request_errors.labels("invalid_request_error", "400")._value.get() == 1
    assert second_metrics.request_errors.labels("invalid_request_error", "400")._value.get() == 0


@pytest.mark.parametrize("path", ["/v1/route/explain"])
def test_explain_plans_without_generating(tmp_path: Path, path: str) -> None:
    client, _ = app_client(tmp_path)
    plan = client.post(path, json=CHAT).json()
    assert plan["route"] == "faq" and plan["steps"][0]["tier"] == "small"


def test_a_streams_first_chunk_carries_the_role_with_the_first_token(tmp_path: Path) -> None:
    """Clients time the first token by the first chunk (vLLM's benchmark client does): a chunk
    sent before any text would read as an instant first token."""
    client, _ = app_client(tmp_path)
    body = {**CHAT, "model": "tierserve/small", "stream": True}  # streamed token by token
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        events = frames(response.read().decode())
    chunks = [json.loads(e) for e in events[:-1]]
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] == "small "
    assert chunks[1]["choices"][0]["delta"] == {"content": "answer"}


def test_a_streamed_request_too_long_for_every_tier_is_a_400_before_any_byte(
    tmp_path: Path,
) -> None:
    chat, engines, _ = support_service(tmp_path)
    for name, engine in engines.items():
        engine.error = ContextLengthError(name, 3000, 128, 2048)

    client = http_client(chat)
    body = {**CHAT, "model": "tierserve/large", "stream": True}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "2048-token context" in response.json()["error"]["message"]
