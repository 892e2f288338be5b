"""The ingress deployment: builds a ChatService over the tiers' Serve handles and serves the
HTTP app of :mod:`tierserve.serve.http`, built per replica (Serve's late-bound ingress).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from fastapi import FastAPI
from prometheus_client import REGISTRY
from ray import serve
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from tierserve.api.service import ChatService
from tierserve.api.sessions import DatabaseSessions, InMemorySessions
from tierserve.config import StackConfig
from tierserve.engine.types import Generation, GenerationChunk, GenerationRequest, Refusal
from tierserve.errors import TierBusyError, TierserveError, TierUnavailableError
from tierserve.observe.database import open_engine
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.recorder import DurableRecorder
from tierserve.policy.spec import Policy
from tierserve.review import DatabaseReviewQueue, JsonlReviewQueue
from tierserve.serve.http import build_http_app
from tierserve.serve.policy_switch import PolicySwitch
from tierserve.serve.quota_actor import SharedQuota

__all__ = ["Gateway", "HandleEngine", "RunningReplicas", "running_replicas"]

_log = logging.getLogger(__name__)


def _unwrap(tier: str, error: RayTaskError) -> Exception:
    """A tierserve error raised in the tier's replica is itself; anything else means the tier
    is not serving (503)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, TierserveError):
        return cause
    return TierUnavailableError(
        tier,
        "the tier's replica failed while generating",
        hint="retry later; check /healthz",
        detail=f"{type(cause).__name__}: {cause}"[:500],
    )


def _queue_full(tier: str, error: BackPressureError) -> TierBusyError:
    """The tier's queue is at its max_queued_requests: the ladder moves on (reason
    ``error=TierBusyError``), or the caller gets a 503 with Retry-After."""
    return TierBusyError(tier, "the tier's queue is full", hint="retry later", detail=str(error))


class RunningReplicas:
    """How many replicas of each deployment Serve's controller reports running, read at most
    every ``max_age_s`` in a worker thread and never waited for: a request is answered from
    the last reading (none yet: unknown)."""

    def __init__(self, read: Callable[[], dict[str, int]], max_age_s: float = 2.0) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._counts: dict[str, int] = {}
        self._read_at = -max_age_s
        self._reading: asyncio.Task[None] | None = None

    def none_running(self, deployment: str) -> bool:
        """Whether the last reading found no running replica of ``deployment``."""
        if self._reading is None and time.monotonic() - self._read_at >= self._max_age_s:
            self._reading = asyncio.get_running_loop().create_task(self._refresh())
        return self._counts.get(deployment) == 0

    async def _refresh(self) -> None:
        try:
            self._counts = await asyncio.to_thread(self._read)
        except Exception as error:  # no controller answer: keep the last reading
            _log.warning("could not read the tiers' replica counts: %s", error)
        finally:
            self._read_at, self._reading = time.monotonic(), None


def running_replicas(app_name: str) -> dict[str, int]:
    """Running replicas per deployment of ``app_name``, from Serve's controller."""
    deployments = serve.status().applications[app_name].deployments
    return {
        name: sum(n for state, n in status.replica_states.items() if state == "RUNNING")
        for name, status in deployments.items()
    }


class HandleEngine:
    """A tier's Serve handle seen as an :class:`~tierserve.engine.Engine`. With ``replicas``,
    a tier that has no running replica (its node lost, or restarting without a surge) fails at
    once, so its requests climb the ladder or get a 503 instead of waiting in Serve's queue
    for one until the tier's timeout."""

    def __init__(
        self,
        tier: str,
        handle: DeploymentHandle[Any],
        replicas: RunningReplicas | None = None,
    ) -> None:
        self._tier = tier
        self._handle = handle
        self._replicas = replicas

    def _refuse_without_replicas(self) -> None:
        if self._replicas is not None and self._replicas.none_running(self._handle.deployment_name):
            raise TierUnavailableError(
                self._tier,
                "the tier has no running replica",
                hint="retry later; check /healthz",
            )

    async def generate(self, request: GenerationRequest) -> Generation:
        self._refuse_without_replicas()
        try:
            result: Generation | Refusal = await self._handle.generate.remote(request)
        except RayTaskError as error:
            raise _unwrap(self._tier, error) from None
        except BackPressureError as error:
            raise _queue_full(self._tier, error) from None
        if isinstance(result, Refusal):
            raise result.error
        return result

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        self._refuse_without_replicas()
        try:
            chunks = cast(
                DeploymentResponseGenerator[GenerationChunk | Refusal],
                self._handle.options(stream=True).stream.remote(request),
            )
            async for chunk in chunks:
                if isinstance(chunk, Refusal):
                    raise chunk.error
                yield chunk
        except RayTaskError as error:
            raise _unwrap(self._tier, error) from None
        except BackPressureError as error:
            raise _queue_full(self._tier, error) from None


def _serve_healthy(handle: DeploymentHandle[Any]) -> bool:
    """Whether Serve's controller counts the handle's deployment healthy (its replicas are up
    and pass their health checks)."""
    try:
        app = serve.status().applications[handle.app_name]
        status = app.deployments[handle.deployment_name].status
        return str(getattr(status, "value", status)) == "HEALTHY"
    except Exception:  # no controller answer is no evidence of health
        return False


@serve.ingress()
class Gateway:
    """Deployment body; ``serve.deployment`` options are applied in :func:`build_app`."""

    def __init__(
        self,
        config: StackConfig,
        tiers: dict[str, DeploymentHandle[Any]],
        policy: Policy,
    ) -> None:
        self._tiers = tiers
        self._last_status: dict[str, dict[str, Any]] = {}
        if policy.auth.require_keys:
            _log.info("API keys required (policy %s)", policy.version)
        else:
            _log.warning(
                "open gateway: a caller without a known API key is served as tenant %r; set "
                "auth.require_keys in the policy to refuse them",
                policy.default_tenant,
            )
        self._config = config
        self._retry_after_s = config.gateway.deployment.retry_after_s
        observe = config.observe
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiprocess_dir:  # on another node than build_app's, the directory is new here
            Path(multiprocess_dir).mkdir(parents=True, exist_ok=True)
        self._metrics = TierserveMetrics(REGISTRY)
        engine = open_engine(
            observe.database_url or observe.decision_log_path,
            pool_size=observe.database_pool_size,
            max_overflow=observe.database_max_overflow,
        )
        decision_log = DecisionLog(
            engine, retention_days=observe.retention_days, max_records=observe.max_records
        )
        self._recorder = DurableRecorder(decision_log, self._metrics)
        shared = observe.database_url is not None
        self._sessions = DatabaseSessions(engine) if shared else InMemorySessions()
        self._review_queue = (
            DatabaseReviewQueue(engine, max_items=config.gateway.review_queue_max_items)
            if shared
            else JsonlReviewQueue(
                config.gateway.review_queue_path,
                max_bytes=config.gateway.review_queue_max_bytes,
                keep_files=config.gateway.review_queue_keep_files,
            )
        )
        app_name = next(iter(tiers.values())).app_name if tiers else ""
        self._replicas = RunningReplicas(lambda: running_replicas(app_name))
        self._policies = PolicySwitch(self._service_for, policy, self._metrics, config)

    def _service_for(self, policy: Policy) -> ChatService:
        """A ChatService deciding by ``policy``, over this replica's tiers, log, queue and
        sessions (a new policy version gets a new one; those stay)."""
        from tierserve.prompt_models.embedder import EmbeddingTaskClassifier, embedder_for

        # One encoder, one pass per prompt, for every prompt model: the task classifier,
        # question kinds, start routers.
        embedder = embedder_for(policy, cache_dir=self._config.model_cache_dir / "encoders")
        predictor = None
        if policy.task_classifier is not None and embedder is not None:
            predictor = EmbeddingTaskClassifier(policy.task_classifier, embedder)
        return ChatService(
            self._config,
            {
                name: HandleEngine(name, handle, self._replicas)
                for name, handle in self._tiers.items()
            },
            policy=policy,
            predictor=predictor,
            embedder=embedder,
            review_queue=self._review_queue,
            recorder=self._recorder,
            sessions=self._sessions,
            quota=(
                SharedQuota(serve.get_replica_context().app_name)
                if any(tenant.rate_limit for tenant in policy.tenants)
                else None
            ),
            on_circuit_change=self._metrics.observe_circuit,
        )

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve calls this with the deployment's ``user_config`` at start and whenever it
        changes: a new policy version, in place (:class:`PolicySwitch`); no tier restarts."""
        await self._policies.apply(user_config)

    async def _statuses(self) -> dict[str, dict[str, Any] | str]:
        """Each tier's status. A status call waits for a free slot of the tier's replica like
        a generation does, so under load it may not come back in time: the tier is then
        reported from Serve's controller (healthy: its last status, marked busy), not as down."""

        async def one(name: str, handle: DeploymentHandle[Any]) -> dict[str, Any] | str:
            try:
                status = await asyncio.wait_for(handle.status.remote(), timeout=2)
            except Exception as error:
                last = self._last_status.get(name)
                if last is not None and await asyncio.to_thread(_serve_healthy, handle):
                    return {**last, "busy": True}
                return f"unavailable: {type(error).__name__}"
            as_dict: dict[str, Any] = status.as_dict()
            self._last_status[name] = as_dict
            self._metrics.observe_calibration(
                name,
                str(as_dict.get("model_version")),
                self._policies.current().policy.calibrated_on.get(name),
            )
            return as_dict

        names = list(self._tiers)
        results = await asyncio.gather(*(one(n, self._tiers[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_http_app(
            self._policies.current,
            statuses=self._statuses,
            metrics=self._metrics,
            retry_after_s=self._retry_after_s,
        )
