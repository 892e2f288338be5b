"""Rate limits (429), denials on record, the circuit breaker in the ladder, streams the client
left, and explain that does not tell valid keys from unknown ones."""

import asyncio
from pathlib import Path

import pytest

from tests.fakes import (
    FAQ,
    SUPPORT,
    THREE,
    FaqPredictor,
    ListRecorder,
    ScriptedEngine,
    chat_request,
    completion_json,
    http_client,
    support_service,
)
from tierserve.api.protocol import CallerContext
from tierserve.api.service import ChatService
from tierserve.config import StackConfig
from tierserve.errors import PermissionDeniedError, RateLimitError, TierUnavailableError
from tierserve.policy.spec import Policy, RateLimitSpec
from tierserve.policy.step import Outcome
from tierserve.quota import LocalQuota

INTERNAL = CallerContext(api_key="sk-internal-demo")
NORTHBANK = CallerContext(api_key="sk-northbank-demo")


def limited(rate: RateLimitSpec) -> Policy:
    """The support policy with ``rate`` on the internal tenant."""
    tenants = [
        t.model_copy(update={"rate_limit": rate}) if t.id == "internal" else t
        for t in SUPPORT.tenants
    ]
    return SUPPORT.model_copy(update={"tenants": tenants})


def service(
    policy: Policy = SUPPORT, config: StackConfig = THREE, **errors: Exception
) -> tuple[ChatService, dict[str, ScriptedEngine], ListRecorder]:
    engines = {
        name: ScriptedEngine(name, text=f"{name} answer", logprobs=(-0.01,), error=errors.get(name))
        for name in ("small", "medium", "large")
    }
    recorder = ListRecorder()
    chat = ChatService(
        config,
        engines,
        policy=policy,
        predictor=FaqPredictor(),
        recorder=recorder,
        quota=LocalQuota(),
    )
    return chat, engines, recorder


async def test_a_tenant_over_its_request_limit_is_refused_and_the_refusal_recorded() -> None:
    chat, engines, recorder = service(limited(RateLimitSpec(requests_per_minute=2)))
    for n in range(2):
        await completion_json(
            chat, chat_request(f"{FAQ} ({n})"), INTERNAL
        )  # distinct: no cache hits
    with pytest.raises(RateLimitError, match="limit of 2 requests per minute") as caught:
        await completion_json(chat, chat_request(FAQ), INTERNAL)
    assert caught.value.http_status == 429 and caught.value.retry_after_s >= 1
    await completion_json(chat, chat_request(FAQ))  # the public tenant has no limit
    denied = [r for r in recorder.records if r.outcome is Outcome.DENIED]
    assert len(recorder.records) == 4 and len(denied) == 1
    assert denied[0].tenant == "internal" and denied[0].plan == ["rate_limit=requests>2/min"]
    assert denied[0].steps == [] and denied[0].cost_usd == 0
    assert sum(len(e.requests) for e in engines.values()) == 3


async def test_tokens_used_are_charged_and_end_in_a_429_once_spent() -> None:
    # Each scripted answer costs 7 prompt + 1 completion tokens.
    chat, _, recorder = service(limited(RateLimitSpec(tokens_per_minute=10)))
    await completion_json(chat, chat_request(FAQ), INTERNAL)
    await completion_json(
        chat, chat_request(FAQ + "?"), INTERNAL
    )  # 8 of 10 used before it: admitted
    with pytest.raises(RateLimitError, match="10 tokens per minute"):
        await completion_json(chat, chat_request(FAQ + "??"), INTERNAL)
    assert recorder.records[-1].plan == ["rate_limit=tokens>10/min"]


def test_a_429_carries_retry_after_and_openai_s_error_code() -> None:
    chat, _, _ = service(limited(RateLimitSpec(requests_per_minute=1)))

    client = http_client(chat)
    body = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}]}
    auth = {"authorization": "Bearer sk-internal-demo"}
    assert client.post("/v1/chat/completions", json=body, headers=auth).status_code == 200
    refused = client.post("/v1/chat/completions", json=body, headers=auth)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert "sk-internal-demo" not in refused.text


async def test_a_403_is_recorded_with_the_plan_that_refused_it(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, engines, _ = support_service(tmp_path, recorder=recorder)
    with pytest.raises(PermissionDeniedError):
        await completion_json(chat, chat_request("hi", model="tierserve/small"), NORTHBANK)
    (record,) = recorder.records
    assert record.outcome is Outcome.DENIED and record.tenant == "northbank"
    assert record.plan[-1] == "denied=permission" and record.route != "-"
    assert engines["small"].requests == []


def breaking(failures: int) -> StackConfig:
    cascade = THREE.cascade.model_copy(update={"breaker_failures": failures})
    return THREE.model_copy(update={"cascade": cascade})


async def test_a_tier_that_keeps_failing_is_skipped_with_a_reason_instead_of_called() -> None:
    down = TierUnavailableError("small", "the tier's replica failed while generating")
    chat, engines, recorder = service(config=breaking(2), small=down)
    for _ in range(3):
        body, _ = await completion_json(chat, chat_request(FAQ))
        assert body["tierserve"]["tier"] == "medium"
    assert len(engines["small"].requests) == 2  # the third request skipped it
    first, _, third = recorder.records
    assert first.steps[0].reason.startswith("error=TierUnavailableError => escalate medium")
    assert third.steps[0].reason == "circuit_open => escalate medium"
    assert third.steps[0].tier == "small" and third.steps[0].latency_s < 0.01


async def test_a_caller_s_bad_request_never_trips_the_breaker() -> None:
    from tierserve.errors import InvalidRequestError

    chat, engines, _ = service(config=breaking(1), small=InvalidRequestError("bad stop"))
    for _ in range(2):
        with pytest.raises(InvalidRequestError):
            await completion_json(chat, chat_request(FAQ))
    assert len(engines["small"].requests) == 2


async def test_a_stream_the_client_leaves_is_recorded_with_what_it_was_sent() -> None:
    chat, engines, recorder = service()
    engines["small"].text = "one two three four five six"
    engines["small"].delay_s = 0.05
    # Pinned to one tier, whose gate cannot reject: the answer streams as it is generated.
    reply = await chat.stream(chat_request(FAQ, stream=True, model="tierserve/small"))
    chunks = reply.chunks
    first = await anext(chunks)  # noqa: F841 - the first words reached the client
    second = await anext(chunks)  # noqa: F841
    await chunks.aclose()  # type: ignore[attr-defined]
    await asyncio.sleep(0.1)  # the record is written by a task of its own
    (record,) = recorder.records
    assert record.outcome is Outcome.CLIENT_CLOSED and record.answered_by == "small"
    (step,) = record.steps
    assert step.outcome is Outcome.CLIENT_CLOSED and step.completion_tokens == 2
    assert step.reason == "client_closed after 2 tokens (8 characters) sent"
    assert engines["small"].finished == 0  # the tier's stream was stopped, not run out


async def test_explain_answers_alike_for_a_valid_key_an_unknown_key_and_none() -> None:
    chat, _, _ = service()
    body = chat_request(FAQ)
    answers = [
        await chat.explain(body, CallerContext(api_key=key))
        for key in ("sk-northbank-demo", "sk-guessed", None)
    ]
    assert answers[0] == answers[1] == answers[2] and answers[0]["tenant"] == "public"
    trusted = THREE.model_copy(
        update={"gateway": THREE.gateway.model_copy(update={"explain_uses_key": True})}
    )
    chat, _, _ = service(config=trusted)
    assert (await chat.explain(body, NORTHBANK))["tenant"] == "northbank"
