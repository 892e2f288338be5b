"""Real client libraries against the running stack, as an app would call it: the openai SDK
(sync, async, streaming, structured parse, log-probabilities, tool calls over two turns,
parameters it refuses) and LangChain's ChatOpenAI (invoke, stream, bind_tools over two turns,
structured output as json_schema and as a function call), and LiteLLM as a client."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool as lc_tool
from langchain_openai import ChatOpenAI
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel, SecretStr

from tests.fakes import WEATHER_TOOL as WEATHER
from tierserve.config import StackConfig
from tierserve.observe.decision_log import DecisionLog, LogQuery

CAPITAL = [{"role": "user", "content": "What is the capital of France?"}]
OFFICE = (
    "Extract the city and the country from this note: 'Our office moved to Lyon, France, "
    "last spring.'"
)


class Place(BaseModel):
    city: str
    country: str


def test_logprobs_in_openai_s_shape_from_a_real_tier(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="tierserve/small",
        messages=CAPITAL,  # type: ignore[arg-type]
        temperature=0,
        max_tokens=16,
        logprobs=True,
        top_logprobs=3,
    )
    choice = completion.choices[0]
    assert "Paris" in (choice.message.content or "")
    assert choice.logprobs is not None and choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    for token in tokens:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        # Greedy decoding picks the likeliest token: the first alternative is the token itself.
        assert token.top_logprobs[0].token == token.token
        assert token.top_logprobs[0].logprob == pytest.approx(token.logprob, abs=1e-3)
        assert bytes(token.bytes or []) == token.token.encode()


def test_async_streaming_with_usage_and_per_chunk_logprobs(base_url: str) -> None:
    async def run() -> tuple[str, str, int]:
        client = AsyncOpenAI(base_url=f"{base_url}/v1", api_key="none", max_retries=0)
        text: list[str] = []
        tokens: list[str] = []
        usage = 0
        stream = await client.chat.completions.create(  # type: ignore[call-overload]
            model="tierserve/small",
            messages=CAPITAL,
            temperature=0,
            max_tokens=16,
            stream=True,
            logprobs=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                if choice.logprobs and choice.logprobs.content:
                    tokens.extend(t.token for t in choice.logprobs.content)
        await client.close()
        return "".join(text), "".join(tokens), usage

    text, tokens, usage = asyncio.run(run())
    assert "Paris" in text and tokens == text and usage > 0


def test_structured_parse_with_a_pydantic_model(client: OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="tierserve",
        messages=[{"role": "user", "content": OFFICE}],
        response_format=Place,
        temperature=0,
    )
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Place) and "lyon" in parsed.city.lower()
    metadata = (completion.model_extra or {})["tierserve"]
    assert metadata["output_schema"].startswith("own:") and metadata["outcome"] == "accept"


def test_sampling_extras_reach_the_engine(client: OpenAI) -> None:
    """min_tokens (a vLLM extra) holds the answer open past its natural end."""
    short = client.chat.completions.create(
        model="tierserve/small", messages=CAPITAL, temperature=0, max_tokens=64
    )
    held = client.chat.completions.create(
        model="tierserve/small",
        messages=CAPITAL,
        temperature=0,
        max_tokens=64,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        seed=3,
        extra_body={"min_tokens": 40, "top_k": 5, "repetition_penalty": 1.05},
    )
    assert short.usage is not None and held.usage is not None
    assert short.usage.completion_tokens < 40 <= held.usage.completion_tokens


def test_an_unknown_or_unsupported_parameter_is_a_400_naming_it(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(
            model="tierserve",
            messages=CAPITAL,  # type: ignore[arg-type]
            extra_body={"best_of": 3},
        )
    assert "best_of" in str(unknown.value) and "unknown parameter" in str(unknown.value)
    with pytest.raises(openai.BadRequestError) as audio:
        client.chat.completions.create(
            model="tierserve",
            messages=CAPITAL,  # type: ignore[arg-type]
            modalities=["text", "audio"],
        )
    assert "modalities" in str(audio.value)


def test_models_are_retrieved_by_id(client: OpenAI) -> None:
    assert client.models.retrieve("tierserve/small").id == "tierserve/small"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def langchain_model(base_url: str, model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=f"{base_url}/v1",
        api_key=SecretStr("none"),
        temperature=0,
        max_retries=0,
        **options,
    )


def test_langchain_invoke_stream_and_structured_output(base_url: str) -> None:
    llm = langchain_model(base_url, "tierserve/small", max_tokens=16)
    answer = llm.invoke("What is the capital of France?")
    assert "Paris" in str(answer.content)
    assert answer.response_metadata["model_name"] == "tierserve/small"
    streamed = "".join(str(chunk.content) for chunk in llm.stream("What is the capital of France?"))
    assert streamed == answer.content  # greedy: the same answer, in pieces
    structured = langchain_model(base_url, "tierserve").with_structured_output(
        Place, method="json_schema"
    )
    place = structured.invoke(OFFICE)
    assert isinstance(place, Place) and "lyon" in place.city.lower()


WEATHER_QUESTION = "What is the weather in Paris right now?"
# The embedded 0.5B tiers repeat the call after a tool result unless asked for the answer: the
# follow-up turn says so, and sets tool_choice none (an agent loop's "final answer" turn).
ANSWER_FROM_TOOLS = "Answer the user's question in one plain sentence, using the tool results."
FORECAST = '{"city": "Paris", "celsius": 18, "sky": "clear"}'


def test_openai_sdk_two_turn_tool_conversation(client: OpenAI) -> None:
    question: list[Any] = [
        {"role": "system", "content": ANSWER_FROM_TOOLS},
        {"role": "user", "content": WEATHER_QUESTION},
    ]
    first = client.chat.completions.create(
        model="tierserve", messages=question, tools=[WEATHER], tool_choice="required", temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"].lower() == "paris"
    meta = (first.model_extra or {})["tierserve"]
    assert meta["route"] == "tools" and meta["outcome"] == "accept"
    follow_up = [
        *question,
        choice.message.model_dump(exclude_none=True),  # replayed as the SDK returned it
        {"role": "tool", "tool_call_id": call.id, "content": FORECAST},
    ]
    second = client.chat.completions.create(
        model="tierserve",
        messages=follow_up,
        tools=[WEATHER],
        tool_choice="none",
        temperature=0,
        max_tokens=64,
    )
    answer = second.choices[0]
    assert answer.finish_reason == "stop" and "18" in (answer.message.content or "")


def test_an_invalid_call_from_the_small_tier_escalates_with_its_reason_on_record(
    client: OpenAI, http: httpx.Client, stack_config: StackConfig
) -> None:
    """The small tier (135M parameters) does not write a valid call for this request (checked
    pinned first); through the cascade its answer is refused by the tool_args gate."""
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": WEATHER_QUESTION}],
        "tools": [WEATHER],
        "tool_choice": "required",
        "temperature": 0,
    }
    pinned = http.post("/v1/chat/completions", json={**body, "model": "tierserve/small"}).json()
    (small_step,) = pinned["tierserve"]["steps"]
    verdicts = {v["name"]: v["passed"] for v in small_step["validations"]}
    if verdicts["tool_args"]:
        pytest.fail(f"the small tier wrote a valid call this time: {pinned['choices'][0]}")
    before = http.get("/metrics").text
    answer = http.post("/v1/chat/completions", json={**body, "model": "tierserve"}).json()
    meta = answer["tierserve"]
    assert meta["tiers_tried"][0] == "small" and len(meta["tiers_tried"]) > 1
    assert meta["reasons"][0].startswith("tool_args=fail(")
    assert answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    record = next(
        r
        for r in DecisionLog(stack_config.observe.decision_log_path).query(
            LogQuery(since=time.time() - 600)
        )
        if r.request_id == answer["id"]
    )
    assert record.steps[0].reason == meta["reasons"][0]
    assert record.steps[0].failed_validators == ("tool_args",)
    failures = 'tierserve_validator_failures_total{tier="small",validator="tool_args"}'
    assert _sample(http.get("/metrics").text, failures) == _sample(before, failures) + 1


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


@lc_tool
def get_weather(city: str, unit: str = "celsius") -> str:
    """Current weather in a city."""
    return FORECAST


def test_langchain_bind_tools_two_turns_and_function_calling_output(base_url: str) -> None:
    llm = langchain_model(base_url, "tierserve")
    with_tools = llm.bind_tools([get_weather], tool_choice="get_weather")
    question = [SystemMessage(ANSWER_FROM_TOOLS), HumanMessage(WEATHER_QUESTION)]
    first = with_tools.invoke(question)
    assert isinstance(first, AIMessage) and first.tool_calls
    (call,) = first.tool_calls
    assert call["name"] == "get_weather" and call["args"]["city"].lower() == "paris"
    result = ToolMessage(content=get_weather.invoke(call["args"]), tool_call_id=call["id"])
    second = llm.bind_tools([get_weather], tool_choice="none").invoke([*question, first, result])
    assert "18" in str(second.content)
    place = llm.with_structured_output(Place, method="function_calling").invoke(OFFICE)
    assert isinstance(place, Place) and "lyon" in place.city.lower()


def test_litellm_as_a_client_completion_stream_and_tool_call(base_url: str) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for its price map
    import litellm

    common: dict[str, Any] = {"api_base": f"{base_url}/v1", "api_key": "none", "temperature": 0}
    answer = litellm.completion(
        model="openai/tierserve/small", messages=CAPITAL, max_tokens=16, **common
    )
    assert "Paris" in answer.choices[0].message.content
    pieces = litellm.completion(
        model="openai/tierserve/small", messages=CAPITAL, max_tokens=16, stream=True, **common
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in pieces)
    assert streamed == answer.choices[0].message.content
    called = litellm.completion(
        model="openai/tierserve",
        messages=[{"role": "user", "content": WEATHER_QUESTION}],
        tools=[WEATHER],
        tool_choice="required",
        **common,
    )
    (call,) = called.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
