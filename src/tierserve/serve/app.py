"""``build_app``: the builder every ``serve_configs/*.yaml`` names as its ``import_path``; and
``build_gateway_app``, more gateway replicas over an app's running tiers."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from ray import serve
from ray._common.constants import HEAD_NODE_RESOURCE_NAME
from ray.serve import Application, Deployment

from tierserve.config import StackConfig, parse_config
from tierserve.serve.calibration import servable_policy
from tierserve.serve.gateway import Gateway
from tierserve.serve.model_server import ModelServer

__all__ = ["build_app", "build_gateway_app"]


def build_app(args: dict[str, Any] | StackConfig) -> Application:
    """The tiers and the gateway, each deployed with its typed options (``tiers[].deployment``,
    ``gateway.deployment``); the gateway gets the config and policy as typed objects."""
    config = args if isinstance(args, StackConfig) else parse_config(args, source="app args")
    policy = servable_policy(config)
    warm_schemas = [s.schema_ for s in policy.schemas.values()]
    tiers = {
        tier.name: serve.deployment(
            name=f"tier-{tier.name}", **tier.ray_options(), **tier.deployment.serve_options()
        )(ModelServer).bind(tier, str(config.model_cache_dir), warm_schemas)
        for tier in config.tiers
    }
    application: Application = _gateway(config).bind(config, tiers, policy)
    return application


def build_gateway_app(args: dict[str, Any]) -> Application:
    """Gateway replicas over the tiers of another app already running in this Ray cluster
    (``args["tiers_app"]``; ``args["stack"]`` is the stack config): a second gateway, e.g.
    with its own state or policy version, without loading the models again."""
    config = parse_config(args.get("stack"), source="gateway app args")
    tiers_app = str(args.get("tiers_app", "tierserve"))
    policy = servable_policy(config)
    handles = {
        tier.name: serve.get_deployment_handle(f"tier-{tier.name}", app_name=tiers_app)
        for tier in config.tiers
    }
    application: Application = _gateway(config).bind(config, handles, policy)
    return application


def _gateway(config: StackConfig) -> Deployment:
    metrics_dir = _metrics_dir(config.observe.metrics_dir)
    gateway: Deployment = serve.deployment(
        name="gateway",
        ray_actor_options={
            "num_cpus": 0,
            # Read by prometheus-client when it is first imported: it must be in the
            # environment the replica process starts with.
            "runtime_env": {"env_vars": {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}},
            **_placement(config.gateway.placement, config.gateway.resources),
        },
        **config.gateway.deployment.serve_options(),
    )(Gateway)
    return gateway


def _placement(placement: str, resources: dict[str, float]) -> dict[str, Any]:
    """Ray actor options that keep a replica where ``placement`` says: on the head, by the
    resource Ray gives the head node alone (Serve pins its own controller the same way), or
    on the nodes that declare ``resources``."""
    if placement == "head":
        return {"resources": {HEAD_NODE_RESOURCE_NAME: 0.001}}
    return {"resources": dict(resources)} if resources else {}


def _metrics_dir(root: Path) -> Path:
    """A fresh multiprocess directory for this deployment of the app.

    Replicas of one deployment share it, so a replica that is restarted keeps adding to the
    same totals; a new deployment starts from zero, and the directories of earlier ones on
    this host are removed.
    """
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("run-*"):
        shutil.rmtree(old, ignore_errors=True)
    fresh = root / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    fresh.mkdir()
    return fresh
