"""Shared fakes and builders for unit tests of pure code (never used by integration tests):
scripted engines, an in-memory recorder, a fixed task predictor, an encoder of chosen
vectors, configs, requests, and services over them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from tierserve.api.protocol import CallerContext, ChatCompletionRequest
from tierserve.api.service import ChatService
from tierserve.config import StackConfig, parse_config
from tierserve.engine.types import (
    Generation,
    GenerationChunk,
    GenerationRequest,
    TokenLogprob,
    ToolCall,
)
from tierserve.observe.decision_record import DecisionRecord, StageLatency
from tierserve.observe.metrics import TierserveMetrics
from tierserve.policy.runner import LadderRunner, TerminalMessages
from tierserve.policy.spec import (
    LadderStepSpec,
    Policy,
    RouteSpec,
    TaskClass,
    TenantSpec,
    load_policy,
)
from tierserve.policy.start_router import EncoderName
from tierserve.policy.step import Outcome, Step
from tierserve.review import JsonlReviewQueue
from tierserve.serve.http import build_http_app

ROOT = Path(__file__).resolve().parents[1]
STACK_TIERS = ["small", "medium", "large"]
"""The tiers of the shipped stack configs, which their policies are read for."""
SUPPORT = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)


def policy_data(path: Path = ROOT / "serve_configs/policies/support.yaml") -> dict[str, Any]:
    """A shipped policy as YAML data with every file it names made absolute (schemas, the
    classifier's examples and weights, kind and start-router models), so a test can change
    it and write it anywhere."""
    import yaml

    data: dict[str, Any] = yaml.safe_load(path.read_text())

    def absolute(name: str) -> str:
        return str(path.parent / name)

    for schema in data.get("schemas", {}).values():
        if "json_schema_file" in schema:
            schema["json_schema_file"] = absolute(schema["json_schema_file"])
    if "classifier_examples" in data:
        data["classifier_examples"] = absolute(data["classifier_examples"])
    models = [data.get("task_classifier") or {}, data.get("question_kinds") or {}]
    models += [route.get("start_router") or {} for route in data["routes"]]
    for model in models:
        if "file" in model:
            model["file"] = absolute(model["file"])
    return data


FAQ = "How do I change the email address on my account?"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


def three_tiers(**small: Any) -> StackConfig:
    """small, medium, large, serving the support policy."""
    return parse_config(
        {
            "tiers": [
                {"name": "small", "model": "/m/s", **small},
                {"name": "medium", "model": "/m/m"},
                {"name": "large", "model": "/m/l", "cost_per_gpu_second": 2.0},
            ],
            "policy": "serve_configs/policies/support.yaml",
        }
    )


THREE = three_tiers()


def cascade_policy(config: StackConfig, min_confidence: float = 0.5) -> Policy:
    """The plain cascade (serve_configs/policies/cascade.yaml) over ``config``'s tiers: every
    tier but the last accepts at ``min_confidence``."""
    *gated, last = config.tier_names
    steps = [LadderStepSpec(tier=tier, min_confidence=min_confidence) for tier in gated]
    return Policy(
        version="cascade-test",
        tiers=config.tier_names,
        tenants=[TenantSpec(id="default")],
        default_tenant="default",
        routes=[
            RouteSpec(
                name="cascade", tasks=list(TaskClass), ladder=[*steps, LadderStepSpec(tier=last)]
            )
        ],
    )


@dataclass
class ScriptedEngine:
    """Answers every request with fixed text and per-token log-probabilities."""

    tier: str
    text: str = "Paris."
    logprobs: tuple[float, ...] = (-0.1, -0.2)
    error: Exception | None = None
    requests: list[GenerationRequest] = field(default_factory=list)
    delay_s: float = 0.0
    """Seconds before the answer (and before each streamed piece): a slow or stuck tier."""
    finished: int = 0
    """Requests that ran to their end (not cancelled by a timeout or a departed caller)."""
    calls: tuple[ToolCall, ...] = ()
    """The tool calls answered to a request that offers tools (``text`` is then the content)."""
    unreadable_call: bool = False
    tokens: tuple[tuple[str, float], ...] = ()
    """When set: the answer token by token (text, log-probability), overriding ``text`` and
    ``logprobs``, with each token's character span reported as vLLM's engine reports it."""

    def __post_init__(self) -> None:
        if self.tokens:
            self.text = "".join(t for t, _ in self.tokens)
            self.logprobs = tuple(v for _, v in self.tokens)

    def _spans(self) -> tuple[tuple[int, int], ...]:
        spans, at = [], 0
        for token, _ in self.tokens:
            spans.append((at, at + len(token)))
            at += len(token)
        return tuple(spans)

    async def _wait(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    def _pieces(self) -> list[str]:
        """The text as the stream sends it: one word (with its trailing space) per token."""
        words = self.text.split(" ")
        return [word + " " for word in words[:-1]] + [words[-1]]

    def _token_details(self, request: GenerationRequest) -> list[TokenLogprob]:
        """Each word as a token, when the caller asked for log-probabilities: its value from
        ``logprobs`` (cycled) and an alternative "~" one nat less likely."""
        if request.top_logprobs is None:
            return []
        details = []
        for index, piece in enumerate(self._pieces()):
            value = self.logprobs[index % len(self.logprobs)]
            top = ((piece, value), ("~", value - 1.0))[: request.top_logprobs]
            details.append(TokenLogprob(piece, value, top))
        return details

    def _generation(self, request: GenerationRequest) -> Generation:
        return Generation(
            tier=self.tier,
            model=f"fake/{self.tier}",
            text=self.text,
            token_logprobs=self.logprobs,
            prompt_tokens=7,
            completion_tokens=len(self.logprobs),
            finish_reason="stop",
            ttft_s=0.01,
            latency_s=0.02,
            logprobs=tuple(self._token_details(request)),
            tool_calls=self.calls if request.tools else (),
            unreadable_tool_call=self.unreadable_call and bool(request.tools),
            token_spans=self._spans(),
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        await self._wait()
        if self.error is not None:
            raise self.error
        self.finished += 1
        return self._generation(request)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        pieces, details = self._pieces(), self._token_details(request)
        for index, piece in enumerate(pieces[:-1]):
            await self._wait()
            yield GenerationChunk(text=piece, tokens=1, logprobs=tuple(details[index : index + 1]))
        await self._wait()
        self.finished += 1
        yield GenerationChunk(
            text=pieces[-1],
            final=self._generation(request),
            tokens=1,
            logprobs=tuple(details[-1:]),
        )


def scripted_runner(
    engines: Mapping[str, ScriptedEngine], confidence_quantile: float = 0.0
) -> LadderRunner:
    """A ladder runner over scripted engines, with short terminal messages."""
    return LadderRunner(
        engines,
        confidence_quantile=confidence_quantile,
        tier_timeout_s=5,
        messages=TerminalMessages(human_review="queued for review", safe_failure="sorry"),
    )


class ListRecorder:
    """Keeps records in memory (the gateway's recorder writes them to the decision log)."""

    def __init__(self) -> None:
        self.records: list[DecisionRecord] = []

    async def record(self, record: DecisionRecord) -> None:
        self.records.append(record)


class FaqPredictor:
    def predict(self, text: str) -> tuple[TaskClass, float]:
        return TaskClass.FAQ, 0.9


def chat_request(text: str = "hi", **fields: object) -> ChatCompletionRequest:
    body = {"model": "tierserve", "messages": [{"role": "user", "content": text}], **fields}
    return ChatCompletionRequest.model_validate(body)


async def completion_json(
    chat: ChatService, body: ChatCompletionRequest, caller: CallerContext | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The JSON body and the headers the gateway would send."""
    completion = await chat.complete(body, caller)
    return completion.model_dump(mode="json"), completion.tierserve.headers()


def support_service(
    tmp_path: Path,
    *,
    config: StackConfig = THREE,
    recorder: ListRecorder | None = None,
    small_logprobs: tuple[float, ...] = (-0.01,),
    answers: Mapping[str, str] | None = None,
    policy: Policy = SUPPORT,
) -> tuple[ChatService, dict[str, ScriptedEngine], JsonlReviewQueue]:
    """The support policy (or ``policy``) over three scripted tiers, every task classified as
    faq. ``answers``: what a tier says (default: '<tier> answer')."""
    said = answers or {}
    engines = {
        name: ScriptedEngine(name, text=said.get(name, f"{name} answer"), logprobs=(-0.01,))
        for name in ("small", "medium", "large")
    }
    engines["small"].logprobs = small_logprobs
    queue = JsonlReviewQueue(tmp_path / "review.jsonl")
    chat = ChatService(
        config,
        engines,
        policy=policy,
        predictor=FaqPredictor(),
        review_queue=queue,
        recorder=recorder,
    )
    return chat, engines, queue


def decision_record(
    request_id: str,
    *,
    time: float = 1_000_000.0,
    tenant: str = "public",
    route: str = "faq",
    outcome: str = "accept",
    reason: str = "conf=0.90>=0.40 => accept small",
) -> DecisionRecord:
    """A decision record of one step on the small tier."""
    verdict = Outcome(outcome)
    return DecisionRecord(
        request_id=request_id,
        time=time,
        tenant=tenant,
        route=route,
        task="faq",
        risk="low",
        policy_version="p1",
        model_requested="tierserve",
        stream=False,
        plan=["task=faq,risk=low => small"],
        models={"small": "m/small"},
        steps=[Step(tier="small", outcome=verdict, reason=reason, cost_usd=0.001)],
        outcome=verdict,
        answered_by="small" if verdict is Outcome.ACCEPT else None,
        first_tier="small",
        cheapest_tier="small",
        confidence=0.9,
        cache="off",
        prompt_sha256="0" * 64,
        prompt="hello [email]",
        latency=StageLatency(policy_s=0.001, inference_s=0.5, validation_s=0.01, total_s=0.52),
    )


def http_app(
    chat: ChatService,
    *,
    tiers: Iterable[str] = (),
    down: str | None = None,
    metrics: TierserveMetrics | None = None,
    served: Mapping[str, str] | None = None,
) -> FastAPI:
    """The gateway's HTTP app over ``chat``: ``tiers`` report healthy (serving the model
    versions ``served`` names), except ``down``, which reports a timeout; metrics in a
    registry of their own unless given."""
    names = tuple(tiers)
    versions = served or {}

    async def statuses() -> dict[str, dict[str, Any] | str]:
        return {
            t: (
                "unavailable: Timeout"
                if t == down
                else {"name": t, "model_version": versions.get(t, f"m/{t}")}
            )
            for t in names
        }

    return build_http_app(
        lambda: chat,
        statuses=statuses,
        metrics=metrics or TierserveMetrics(CollectorRegistry()),
    )


def http_client(
    chat: ChatService,
    *,
    tiers: Iterable[str] = (),
    down: str | None = None,
    metrics: TierserveMetrics | None = None,
    served: Mapping[str, str] | None = None,
) -> TestClient:
    """:func:`http_app` behind a test client: real HTTP framing, no server."""
    app = http_app(chat, tiers=tiers, down=down, metrics=metrics, served=served)
    return TestClient(app)


class FunctionEncoder:
    """A sentence encoder (``prompt_models.encoder.Encoder``) that embeds a text as
    ``vector(text)``: what a real encoder does for kinds it tells clearly apart."""

    def __init__(
        self,
        vector: Callable[[str], list[float]],
        name: EncoderName = "all-MiniLM-L6-v2-int8",
        batches: bool = True,
    ) -> None:
        self.batches = batches
        self._vector = vector
        self._name: EncoderName = name
        self.passes: list[list[str]] = []

    @property
    def name(self) -> EncoderName:
        return self._name

    @property
    def dimensions(self) -> int:
        return len(self._vector(""))

    def keep_ends(self, texts: list[str]) -> tuple[list[str], int]:
        return texts, 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.passes.append(list(texts))
        return np.asarray([self._vector(t) for t in texts], dtype=float)


def sum_axis(text: str) -> list[float]:
    """'sum' texts along one axis, the rest along the other."""
    return [1.0, 0.1] if "sum" in text else [0.1, 1.0]
