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
from tierserve.errors import ConfigError, InvalidRequestError, TierUnavailableError
from tierserve.serve.app import _gateway
from tierserve.serve.gateway import HandleEngine, RunningReplicas
from tierserve.serve.model_server import ModelServer

REQUEST = GenerationRequest("r", (ChatMessage("user", "hi"),), max_tokens=4)


def task_error(cause: Exception) -> RayTaskError:
    return RayTaskError("ModelServer.generate", "Traceback ...", cause)


class FakeHandle:
    """Answers like a DeploymentHandle: ``.generate.remote(...)`` is awaitable,
    ``.options(stream=True).stream.remote(...)`` is an async iterator."""

    deployment_name = "tier-small"

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
    [
        ({"placement": "head"}, {"node:__internal_head__": 0.001}),
        ({"placement": "anywhere"}, None),
        ({"placement": "anywhere", "resources": {"gateway": 1}}, {"gateway": 1}),
    ],
)
def test_gateway_replicas_go_where_the_config_places_them(
    tmp_path: Path, placement: dict[str, Any], resources: dict[str, float] | None
) -> None:
    """On the head by default, where the embedded decision log's file is: Serve would
    otherwise spread them, and a replica on a GPU worker writes its records to that pod."""
    config = parse_config(
        {
            "tiers": [{"name": "small", "model": "/m"}],
            "policy": str(tmp_path / "policy.yaml"),
            "gateway": placement,
            "observe": {"metrics_dir": str(tmp_path)},
        }
    )
    options = _gateway(config).ray_actor_options
    assert options.get("resources") == resources
    assert options["num_cpus"] == 0


def test_gateway_resources_on_the_head_alone_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="set placement: anywhere"):
        parse_config(
            {
                "tiers": [{"name": "small", "model": "/m"}],
                "policy": str(tmp_path / "policy.yaml"),
                "gateway": {"resources": {"gateway": 1}},
            }
        )


async def test_a_tier_without_a_running_replica_fails_at_once_from_the_last_reading() -> None:
    """Its requests climb the ladder or get a 503 at once, not after waiting the tier's
    timeout in Serve's queue for a replica that is not coming (its node lost)."""
    counts = {"tier-small": 1}
    reads: list[int] = []

    def read() -> dict[str, int]:
        reads.append(1)
        return dict(counts)

    replicas = RunningReplicas(read, max_age_s=0.0)
    engine = HandleEngine("small", FakeHandle(ScriptedEngine("small")), replicas)  # type: ignore[arg-type]
    assert (await engine.generate(REQUEST)).text  # no reading yet: unknown, served
    await asyncio.sleep(0.05)
    counts["tier-small"] = 0
    assert (await engine.generate(REQUEST)).text  # the last reading still says 1
    await asyncio.sleep(0.05)
    with pytest.raises(TierUnavailableError, match="no running replica"):
        await engine.generate(REQUEST)
    with pytest.raises(TierUnavailableError, match="no running replica"):
        async for _ in engine.stream(REQUEST):
            pass
    counts["tier-small"] = 1
    await asyncio.sleep(0.05)
    assert (await engine.generate(REQUEST)).text  # back as soon as Serve reports one
    assert len(reads) >= 3


async def test_a_failed_reading_keeps_the_last_one_and_never_holds_a_request() -> None:
    calls: list[int] = []

    def read() -> dict[str, int]:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("controller unreachable")
        return {"tier-small": 0}

    replicas = RunningReplicas(read, max_age_s=0.0)
    assert not replicas.none_running("tier-small")
    await asyncio.sleep(0.05)
    assert replicas.none_running("tier-small")
    await asyncio.sleep(0.05)
    assert replicas.none_running("tier-small") and len(calls) >= 2
