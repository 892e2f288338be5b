import json

import pytest

from tests.fakes import ScriptedEngine
from tierserve.api.protocol import ChatCompletionRequest
from tierserve.api.service import ChatService
from tierserve.config import parse_config
from tierserve.errors import InvalidRequestError

CONFIG = parse_config(
    {
        "tiers": [
            {"name": "small", "model": "/m/small", "confidence_threshold": 0.5},
            {"name": "large", "model": "/m/large"},
        ],
        "gateway": {"max_tokens_limit": 64, "default_max_tokens": 32},
    }
)


def service(
    small_logprobs: tuple[float, ...] = (-0.01,),
) -> tuple[ChatService, dict[str, ScriptedEngine]]:
    engines = {
        "small": ScriptedEngine("small", text="small answer", logprobs=small_logprobs),
        "large": ScriptedEngine("large", text="large answer here", logprobs=(-0.01, -0.02)),
    }
    return ChatService(CONFIG, engines), engines


def request(**fields: object) -> ChatCompletionRequest:
    body = {"model": "tierserve", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


async def test_response_carries_metadata_in_body_and_headers() -> None:
    chat, _ = service(small_logprobs=(-3.0,))
    body, headers = await chat.complete(request())
    meta = body["tierserve"]
    assert body["choices"][0]["message"]["content"] == "large answer here"
    assert meta["tier"] == "large" and meta["tiers_tried"] == ["small", "large"]
    assert meta["reasons"][0] == "conf=0.05<0.50 => escalate large"
    assert headers["x-tierserve-tier"] == "large"
    assert headers["x-tierserve-tiers-tried"] == "small,large"
    assert headers["x-tierserve-reasons"].startswith("conf=0.05<0.50 => escalate large; ")
    assert body["usage"]["completion_tokens"] == 3  # 1 on small + 2 on large


async def test_pinned_tier_skips_the_cascade() -> None:
    chat, engines = service(small_logprobs=(-3.0,))
    body, _ = await chat.complete(request(model="tierserve/small"))
    assert body["tierserve"]["tiers_tried"] == ["small"]
    assert engines["large"].requests == []


async def test_unknown_model_lists_the_served_ones() -> None:
    chat, _ = service()
    with pytest.raises(InvalidRequestError, match="tierserve/large") as caught:
        await chat.complete(request(model="gpt-4"))
    assert caught.value.param == "model"


async def test_max_tokens_over_limit_is_refused() -> None:
    chat, _ = service()
    with pytest.raises(InvalidRequestError, match="at most 64"):
        await chat.complete(request(max_tokens=65))


async def test_defaults_fill_max_tokens_and_greedy_temperature() -> None:
    chat, engines = service()
    await chat.complete(request())
    sent = engines["small"].requests[0]
    assert sent.max_tokens == 32 and sent.temperature == 0.0


async def test_stream_is_openai_sse_with_metadata_last() -> None:
    chat, _ = service(small_logprobs=(-3.0,))
    reply = await chat.stream(request(stream=True, stream_options={"include_usage": True}))
    assert reply.headers["x-tierserve-tier"] == "large"
    frames = [frame async for frame in reply.body]
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
        request(n=2)
