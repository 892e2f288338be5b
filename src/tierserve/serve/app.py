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
from tierserve.errors import ConfigError
from tierserve.policy.spec import Policy, load_policy
from tierserve.serve.gateway import Gateway
from tierserve.serve.model_server import ModelServer
from tierserve.signals.task_model import load_examples
from tierserve.structured.registry import check_schemas

__all__ = ["build_app"]


def build_app(args: dict[str, Any] | StackConfig) -> Application:
    config = args if isinstance(args, StackConfig) else parse_config(args, source="app args")
    policy = None if config.policy is None else load_policy(config.policy)
    warm_schemas = [] if policy is None else [s.schema_ for s in policy.schemas.values()]
    tiers = {
        tier.name: serve.deployment(
            name=f"tier-{tier.name}",
            num_replicas=1,
            ray_actor_options={"num_cpus": tier.num_cpus, "num_gpus": tier.num_gpus},
            max_ongoing_requests=64,
            health_check_period_s=15,
            health_check_timeout_s=60,
        )(ModelServer).bind(tier, str(config.model_cache_dir), warm_schemas)
        for tier in config.tiers
    }
    metrics_dir = _metrics_dir(config.observe.metrics_dir)
    gateway = serve.deployment(
        name="gateway",
        num_replicas=config.gateway.num_replicas,
        ray_actor_options={
            "num_cpus": 0,
            # Read by prometheus-client when it is first imported: it must be in the
            # environment the replica process starts with.
            "runtime_env": {"env_vars": {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}},
        },
        max_ongoing_requests=256,
    )(Gateway)
    application: Application = gateway.bind(
        config.model_dump(mode="json"), tiers, _policy_args(config, policy)
    )
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


def _policy_args(config: StackConfig, policy: Policy | None) -> dict[str, Any] | None:
    """Check the policy (loaded on the driver, where its files are) against the stack and hand
    it and its labelled examples to the gateway as data."""
    if config.policy is None or policy is None:
        return None
    check_schemas(policy)
    examples = []
    if policy.classifier_examples is not None:
        path = config.policy.parent / policy.classifier_examples
        examples = [{"text": e.text, "task": e.task.value} for e in load_examples(path)]
    tier_names = [tier.name for tier in config.tiers]
    if policy.tiers != tier_names:
        raise ConfigError(
            f"policy {config.policy} names tiers {policy.tiers} but the stack serves {tier_names}",
            hint="make the policy's `tiers` list match the stack's tiers, weakest first",
        )
    return {"policy": policy.model_dump(mode="json"), "examples": examples}
