"""The deployments' own logic without a cluster: a tier's Serve handle as an engine (errors
unwrapped), and the model server over an engine class given as a parameter."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ray.exceptions import RayTaskError

from tests.fakes import ScriptedEngine
from tierserve.config import TierConfig, parse_config
from tierserve.engine.resolve import ResolvedTier
from tierserve.engine.types import ChatMessage, GenerationChunk, GenerationRequest, Refusal
from tierserve.errors import InvalidRequestError, TierUnavailableError
from tierserve.serve.app import _gateway
from tierserve.serve.gateway import HandleEngine
from tierserve.serve.model_server import ModelServer

REQUEST = GenerationRequest("r", (ChatMessage("user", "hi"),), max_tokens=4)


def task_error(cause: Exception) -> RayTaskError:
    return RayTaskError("ModelServer.generate", "Traceback ...", cause)


class FakeHandle:
    """Answers like a DeploymentHandle: ``.generate.remote(...)`` is awaitable,
    ``.options(stream=True).stream.remote(...)`` is an async iterator."""

    def __init__(self, engine: ScriptedEngine, raises: Exception | None = None) -> None:
        self.engine, self.raises = engine, raises
        self.streaming = False
        self.generate = self
        self.stream = self

    def options(self, *, stream: bool = False) -> "FakeHandle":
        self.streaming = stream
        return self

    def remote(self, request: GenerationRequest) -> Any:
        if self.streaming:
            return self
        if self.raises is not None:
            return self._fail()
        return self.engine.generate(request)

    async def _fail(self) -> Any:
        assert self.raises is not None
        raise self.raises

    def __aiter__(self) -> AsyncIterator[GenerationChunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk(text="par")
        if self.raises is not None:
            raise self.raises


async def test_a_handle_answers_as_the_engine_behind_it() -> None:
    engine = HandleEngine("small", FakeHandle(ScriptedEngine("small")))  # type: ignore[arg-type]
    generation = await engine.generate(REQUEST)
    assert generation.tier == "small" and generation.text == "Paris."


async def test_a_tierserve_error_in_the_replica_comes_back_as_itself() -> None:
    refused = InvalidRequestError("too long", hint="shorten it", param="messages")
    handle = FakeHandle(ScriptedEngine("small"), task_error(refused))
    with pytest.raises(InvalidRequestError, match="too long") as caught:
        await HandleEngine("small", handle).generate(REQUEST)  # type: ignore[arg-type]
    assert caught.value.param == "messages"


async def test_any_other_replica_failure_is_the_tier_being_unavailable() -> None:
    handle = FakeHandle(ScriptedEngine("small"), task_error(RuntimeError("CUDA OOM")))
    engine = HandleEngine("small", handle)  # type: ignore[arg-type]
    with pytest.raises(TierUnavailableError, match="replica failed") as caught:
        await engine.generate(REQUEST)
    assert caught.value.http_status == 503
    # The cause is for the decision log and the operator, not for the caller's error body.
    assert caught.value.detail == "RuntimeError: CUDA OOM"
    assert "RuntimeError" not in str(caught.value)
    with pytest.raises(TierUnavailableError, match="tier 'small'"):
        async for _ in engine.stream(REQUEST):
            pass


class RecordingEngine(ScriptedEngine):
    """A scripted engine with the bookkeeping a tier's replica reports."""

    def __init__(self, tier: TierConfig, resolved: ResolvedTier) -> None:
        super().__init__(tier.name)
        self.resolved = resolved
        self.in_flight: set[str] = set()
        self.aborted = 0
        self.stopped = False

    async def healthy(self) -> None:
        return None

    def shutdown(self) -> None:
        self.stopped = True


def test_the_model_server_runs_the_engine_class_it_is_given() -> None:
    tier = TierConfig(name="small", model="/models/small")

    async def build() -> ModelServer:
        # Serve awaits a replica's async __init__; so does this test.
        server = ModelServer.__new__(ModelServer)
        await ModelServer.__init__(  # type: ignore[misc]
            server, tier, "/cache", [{"type": "object"}], engine_cls=RecordingEngine
        )
        return server

    server = asyncio.run(build())
    engine = server._engine
    assert isinstance(engine, RecordingEngine)
    # Warmed up before reporting ready: one plain generation and one per named schema.
    assert [r.json_schema for r in engine.requests] == [None, {"type": "object"}]
    status = asyncio.run(server.status())
    assert (status.name, status.model_version, status.quantization) == (
        "small",
        "/models/small",
        "none",
    )
    asyncio.run(server.check_health())


def test_a_request_the_tier_refuses_is_one_log_line_and_reaches_the_gateway_as_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tier = TierConfig(name="small", model="/models/small")
    refused = InvalidRequestError("tier 'small' refused the request: bad stop", hint="fix it")

    async def run() -> tuple[Any, list[Any]]:
        server = ModelServer.__new__(ModelServer)
        await ModelServer.__init__(server, tier, "/cache", engine_cls=RecordingEngine)  # type: ignore[misc]
        server._engine.error = refused  # type: ignore[attr-defined]
        answer = await server.generate(REQUEST)
        streamed = [chunk async for chunk in server.stream(REQUEST)]
        return answer, streamed

    with caplog.at_level("INFO", logger="ray.serve"):
        answer, streamed = asyncio.run(run())
    # Returned, not raised: Ray Serve logs a raised exception as a failed request with its
    # traceback; a caller's mistake is one line.
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2 and all(r.exc_info is None and r.levelname == "INFO" for r in lines)
    assert "400" in lines[0].getMessage()
    assert isinstance(answer, Refusal) and answer.error is refused
    assert len(streamed) == 1 and isinstance(streamed[0], Refusal)

    class Refusing(FakeHandle):
        def remote(self, request: GenerationRequest) -> Any:
            async def refusal() -> Refusal:
                return Refusal(refused)

            return refusal()

    with pytest.raises(InvalidRequestError, match="bad stop"):
        asyncio.run(HandleEngine("small", Refusing(ScriptedEngine("small"))).generate(REQUEST))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("placement", "resources"),
    [("head", {"node:__internal_head__": 0.001}), ("anywhere", None)],
)
def test_gateway_replicas_go_where_the_config_places_them(
    tmp_path: Path, placement: str, resources: dict[str, float] | None
) -> None:
    """On the head by default, where the embedded decision log's file is: Serve would
    otherwise spread them, and a replica on a GPU worker writes its records to that pod."""
    config = parse_config(
        {
            "tiers": [{"name": "small", "model": "/m"}],
            "policy": str(tmp_path / "policy.yaml"),
            "gateway": {"placement": placement},
            "observe": {"metrics_dir": str(tmp_path)},
        }
    )
    options = _gateway(config).ray_actor_options
    assert options.get("resources") == resources
    assert options["num_cpus"] == 0
