"""What a serving benchmark runs against, and the commands that start each server.

Two servers, started and stopped by the harness one after the other so they never share the
CPU: vLLM's own OpenAI server on the checkpoint a tier serves (no Ray, no gateway), and the
tierserve stack from the user's serve config with its decision log moved into the run folder.
Each *target* is one model name on one server: ``direct`` (vLLM), ``tierserve/<tier>``
(a tier pinned through Ray Serve, the gateway, the policy and the decision log) and
``tierserve`` (the routed cascade).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tierserve.config import StackConfig, TierConfig, read_yaml
from tierserve.engine.resolve import ResolvedTier
from tierserve.errors import ConfigError
from tierserve.model_names import pinned_model

__all__ = [
    "DIRECT",
    "Target",
    "bench_serve_config",
    "direct_server_command",
    "stack_command",
    "targets_for",
]

DIRECT: Literal["direct"] = "direct"
Dataset = Literal["random", "labelled"]


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    """How the report names it: ``direct/small``, ``pinned/small``, ``cascade``, ..."""
    server: Literal["direct", "tierserve"]
    model: str
    """The model name sent in each request."""
    dataset: Dataset
    tier: str | None = None
    """The tier it is pinned to (None for the cascade)."""


def targets_for(config: StackConfig, direct_tier: str) -> list[Target]:
    """Random-prompt targets for overhead and throughput, labelled ones for quality and cost."""
    names = [tier.name for tier in config.tiers]
    if direct_tier not in names:
        raise ConfigError(
            f"--direct-tier {direct_tier!r} is not a tier of this config",
            hint=f"use one of {names}",
        )
    gateway = config.gateway.model_name
    largest = names[-1]
    random = [
        Target(f"direct/{direct_tier}", DIRECT, f"{DIRECT}-{direct_tier}", "random", direct_tier),
        Target(
            f"pinned/{direct_tier}",
            "tierserve",
            pinned_model(gateway, direct_tier),
            "random",
            direct_tier,
        ),
    ]
    if largest != direct_tier:
        random.append(
            Target(
                f"pinned/{largest}", "tierserve", pinned_model(gateway, largest), "random", largest
            )
        )
    labelled = [Target("cascade", "tierserve", gateway, "labelled")] + [
        Target(f"{name}-only", "tierserve", pinned_model(gateway, name), "labelled", name)
        for name in (names[0], largest)
    ]
    return random + labelled


def direct_server_command(tier: TierConfig, resolved: ResolvedTier, *, port: int) -> list[str]:
    """vLLM's OpenAI server with the engine settings the tier's replica uses."""
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", resolved.model_path,
        "--served-model-name", f"{DIRECT}-{tier.name}",
        "--dtype", resolved.dtype,
        "--max-model-len", str(tier.max_model_len),
        "--tensor-parallel-size", str(tier.tensor_parallel_size),
        "--host", "127.0.0.1", "--port", str(port),
        "--disable-uvicorn-access-log",
    ]  # fmt: skip
    if resolved.enforce_eager:
        command.append("--enforce-eager")
    for flag, value in (
        ("--kv-cache-memory-bytes", tier.kv_cache_memory_bytes),
        ("--gpu-memory-utilization", tier.gpu_memory_utilization),
        ("--max-num-seqs", tier.max_num_seqs),
    ):
        if value is not None:
            command += [flag, str(value)]
    if tier.enable_prefix_caching is False:
        command.append("--no-enable-prefix-caching")
    for name, value in tier.engine_args.items():
        flag = "--" + name.replace("_", "-")
        command += [flag] if value is True else [flag, str(value)]
    return command


def bench_serve_config(serve_config: Path, run_dir: Path, *, port: int) -> dict[str, Any]:
    """The user's serve config with its HTTP port and its decision log and review queue moved
    into the run folder, so the harness reads exactly this run's records."""
    data = read_yaml(serve_config)
    if not (isinstance(data, dict) and data.get("applications")):
        raise ConfigError(
            f"{serve_config} is not a Ray Serve config file",
            hint="pass a file like serve_configs/local-cpu.yaml (with applications:)",
        )
    data.setdefault("http_options", {})["port"] = port
    args = data["applications"][0].setdefault("args", {})
    observe = args.setdefault("observe", {})
    observe["decision_log_path"] = str(run_dir / "decisions.sqlite")
    observe.pop("database_url", None)
    args.setdefault("gateway", {})["review_queue_path"] = str(run_dir / "review.jsonl")
    return dict(data)


def stack_command(config_path: Path) -> list[str]:
    return [sys.executable, "-m", "tierserve.cli", "serve", str(config_path)]
