"""``build_app``: the builder every ``serve_configs/*.yaml`` names as its ``import_path``."""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from ray import serve
from ray.serve import Application

from tierserve.config import StackConfig, parse_config
from tierserve.policy.defaults import cascade_policy
from tierserve.policy.spec import load_policy
from tierserve.serve.gateway import Gateway
from tierserve.serve.model_server import ModelServer
from tierserve.signals.task_model import LabelledExample, load_examples
from tierserve.structured.registry import check_schemas

__all__ = ["build_app"]


def build_app(args: dict[str, Any] | StackConfig) -> Application:
    """The tiers and the gateway, each deployed with its typed options (``tiers[].deployment``,
    ``gateway.deployment``); the gateway gets the config and policy as typed objects."""
    config = args if isinstance(args, StackConfig) else parse_config(args, source="app args")
    examples: list[LabelledExample] = []
    if config.policy is None:
        policy = cascade_policy(config)
    else:
        policy = load_policy(config.policy)
        policy.check_stack(config)
        check_schemas(policy)
        if policy.classifier_examples is not None:
            examples = load_examples(config.policy.parent / policy.classifier_examples)
    warm_schemas = [s.schema_ for s in policy.schemas.values()]
    tiers = {
        tier.name: serve.deployment(
            name=f"tier-{tier.name}", **tier.ray_options(), **tier.deployment.serve_options()
        )(ModelServer).bind(tier, str(config.model_cache_dir), warm_schemas)
        for tier in config.tiers
    }
    metrics_dir = _metrics_dir(config.observe.metrics_dir)
    gateway = serve.deployment(
        name="gateway",
        ray_actor_options={
            "num_cpus": 0,
            # Read by prometheus-client when it is first imported: it must be in the
            # environment the replica process starts with.
            "runtime_env": {"env_vars": {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}},
        },
        **config.gateway.deployment.serve_options(),
    )(Gateway)
    application: Application = gateway.bind(config, tiers, policy, examples)
    return application


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
