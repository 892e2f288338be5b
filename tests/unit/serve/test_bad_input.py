"""Bad input gets a 4xx naming the problem, in OpenAI's error shape, before any tier is called.

Each case is one that once reached a tokenizer, a grammar compile or a tier and came back as a
500 or a retryable 503 (issue 19). The same cases run against the real stack in
tests/integration/test_bad_input.py.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.bad_inputs import BAD_BODIES, CHAT, canary_requests, json_schema
from tests.fakes import THREE, http_client, support_service

JSON = {"content-type": "application/json"}


def gateway(tmp_path: Path) -> tuple[TestClient, dict[str, Any]]:
    chat, engines, _ = support_service(tmp_path, config=THREE)
    return http_client(chat, tiers=engines), engines


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_is_a_400_naming_it_and_no_tier_is_called(tmp_path: Path, case: str) -> None:
    body, words, param = BAD_BODIES[case]
    client, engines = gateway(tmp_path)
    # json.dumps escapes a lone surrogate as \ud800, as a client's JSON encoder would.
    response = client.post("/v1/chat/completions", content=json.dumps(body), headers=JSON)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert words in error["message"] and "fix" in error["message"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    assert all(not engine.requests for engine in engines.values())


def test_a_body_over_the_size_limit_is_a_413_before_it_is_parsed(tmp_path: Path) -> None:
    client, engines = gateway(tmp_path)
    huge = {**CHAT, "messages": [{"role": "user", "content": "x" * 1_100_000}]}
    response = client.post("/v1/chat/completions", json=huge)
    assert response.status_code == 413
    error = response.json()["error"]
    assert "larger than 1048576 bytes" in error["message"]
    assert error["code"] == "request_too_large"

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield b'{"model": "tierserve", "messages": [{"role": "user", "content": "'
        for _ in range(300):
            yield b"x" * 4096
        yield b'"}]}'

    streamed = client.post("/v1/chat/completions", content=chunks(), headers=JSON)
    assert streamed.status_code == 413 and "request_too_large" in streamed.text
    assert all(not engine.requests for engine in engines.values())


def test_a_caller_schema_key_outside_latin_1_never_breaks_the_headers(tmp_path: Path) -> None:
    chat, engines, _ = support_service(
        tmp_path, answers={"small": "{}", "medium": "{}", "large": "{}"}
    )
    schema = {"type": "object", "properties": {"名前": {"type": "integer"}}, "required": ["名前"]}

    client = http_client(chat, tiers=engines)
    response = client.post(
        "/v1/chat/completions", json={**CHAT, "response_format": json_schema(schema)}
    )
    assert response.status_code == 200, response.text
    reasons = response.headers["x-tierserve-reasons"]
    assert reasons.isascii() and "\\u540d" in reasons  # the key, escaped, still readable


def test_unknown_paths_and_methods_get_openai_shaped_errors(tmp_path: Path) -> None:
    client, _ = gateway(tmp_path)
    missing = client.post("/v1/completions", json=CHAT)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/v1/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_no_error_body_or_header_echoes_what_the_caller_sent(tmp_path: Path) -> None:
    canary = "canary0123456789abcdef"
    client, _ = gateway(tmp_path)
    statuses = {}
    for name, body, headers in canary_requests(canary):
        route = "/v1/route/explain" if name == "explain" else "/v1/chat/completions"
        response = client.post(route, json=body, headers=headers)
        statuses[name] = response.status_code
        if response.status_code != 200:
            assert canary not in response.text, (name, response.text)
        assert not any(canary in value for value in response.headers.values()), name
    refused = {n for n, status in statuses.items() if status == 400}
    assert {"bad pattern", "bad schema", "bad stop"} <= refused, statuses
    assert statuses["unknown model"] == 404, statuses
