"""The reliability suite (issue 19): one real stack of its own, with small queues, a short
deadline, a rate-limited tenant and prompts kept only as hashes, driven past its capacity,
faulted and fuzzed. The stack runs as a user runs it, a ``make serve`` job in a process group
of its own, so the last test stops it as a terminal's Ctrl-C does (issue 33).

Collected only when ``TIERSERVE_RELIABILITY`` is set: ``short`` (CI, ``make
reliability-smoke``, about 17 minutes) or ``full`` (``make reliability``, whose figures are
committed under benchmarks/results/reliability). Each test writes its figures as JSON to
``TIERSERVE_RELIABILITY_OUT``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import policy_data
from tests.stops.job import Job
from tierserve.config import StackConfig, read_serve_config

ROOT = Path(__file__).resolve().parents[2]
BASE_CONFIG = ROOT / "serve_configs/local-cpu.yaml"
MODE = os.environ.get("TIERSERVE_RELIABILITY", "")
PORT = int(os.environ.get("TIERSERVE_RELIABILITY_PORT", "18767"))
CANARY = f"canary{uuid.uuid4().hex[:16]}"
"""A string sent in prompts, schemas and headers that must show up nowhere (test 7)."""

# Without the variable the suite is not collected: `make test` runs the integration stack,
# and one Ray cluster per pytest process is all a 2-core machine holds.
collect_ignore_glob = [] if MODE else ["test_*.py"]

TIER_QUEUE = {"max_ongoing_requests": 4, "max_queued_requests": 4}
GATEWAY_QUEUE = {"max_ongoing_requests": 24, "max_queued_requests": 16}
DEADLINE_S = 90.0
RATE_LIMITED_KEY = "sk-internal-demo"
RATE_LIMIT_PER_MINUTE = 6


@dataclass(frozen=True)
class Scale:
    capacity_s: float
    overload_s: float
    soak_s: float
    chaos_s: float
    gateway_kill_s: float
    streams: int
    cancelled: int
    fuzz_examples: int
    rollout_requests: int
    """At least this many requests across the rollout's four changes (test 8)."""
    rollout_pause_s: float
    """Load between two changes of the rollout."""


SCALES = {
    "short": Scale(20, 45, 45, 60, 40, 20, 2, 25, 40, 5),
    "full": Scale(40, 240, 600, 180, 90, 100, 10, 300, 200, 20),
}


@pytest.fixture(scope="session")
def scale() -> Scale:
    return SCALES[MODE]


def _write_config(directory: Path) -> Path:
    serve = yaml.safe_load(BASE_CONFIG.read_text())
    args = serve["applications"][0]["args"]
    shipped = ROOT / args["policy"]
    policy = policy_data(shipped)
    policy["version"] += "+reliability"
    policy["log_prompts"] = "hash"  # so the canary may appear nowhere (issue 19, test 7)
    for tenant in policy["tenants"]:
        if any(key == RATE_LIMITED_KEY for key in tenant.get("api_keys", [])):
            tenant["rate_limit"] = {"requests_per_minute": RATE_LIMIT_PER_MINUTE}
    policy_path = directory / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    args["policy"] = str(policy_path)
    # This policy (rate limits, hashed prompts) must be the one served on any host: no
    # calibrated version may be chosen instead of it.
    args.pop("policy_calibrations", None)
    args["cascade"].update(
        request_deadline_s=DEADLINE_S, tier_timeout_s=60, breaker_failures=3, breaker_cooldown_s=15
    )
    args["gateway"].update(default_max_tokens=32, max_tokens_limit=64, deployment=GATEWAY_QUEUE)
    for tier in args["tiers"]:
        tier["deployment"] = TIER_QUEUE
    serve["http_options"]["port"] = PORT
    path = directory / "reliability.yaml"
    path.write_text(yaml.safe_dump(serve, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def state_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="tierserve-reliability-"))
    os.environ["TIERSERVE_STATE_DIR"] = str(directory)
    return directory


@pytest.fixture(scope="session")
def config_path(state_dir: Path) -> Path:
    return _write_config(state_dir)


@pytest.fixture(scope="session")
def stack_config(config_path: Path) -> StackConfig:
    return read_serve_config(config_path).stack


@pytest.fixture(scope="session")
def stack_job(config_path: Path, state_dir: Path) -> Iterator[Job]:
    """The stack as ``make serve`` runs it; stopped here unless a test stopped it."""
    log = Path(tempfile.mkdtemp(prefix="tierserve-reliability-job-")) / "stack.log"
    job = Job(config_path, PORT, log, via_make=True, state_dir=state_dir)
    started = time.monotonic()
    try:
        job.wait_ready()
        print(f"\n[reliability] stack ready in {time.monotonic() - started:.0f} s at {job.url}")
        yield job
    finally:
        if job.process.poll() is None:
            job.signal_group(signal.SIGTERM)
            try:
                job.wait_exit()
            except subprocess.TimeoutExpired:
                job.signal_group(signal.SIGKILL)
                job.process.wait()
        print(f"\n[reliability] the stack's last output ({log}):\n{_tail(log, 60)}")


@pytest.fixture(scope="session")
def base_url(stack_job: Job) -> str:
    return stack_job.url


def ray_logs_dir() -> Path:
    """The stack's Ray log directory. This process joins the cluster as a driver to find it, as
    the rollout's commands do; the last test leaves the cluster before stopping the stack."""
    import ray

    if not ray.is_initialized():
        ray.init(address="auto", log_to_driver=False)
    return Path(ray._private.worker._global_node.get_logs_dir_path())


def _tail(path: Path, lines: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="session")
def results() -> Path:
    out = Path(os.environ.get("TIERSERVE_RELIABILITY_OUT") or tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_figures(results: Path, name: str, figures: dict[str, Any]) -> None:
    figures = {"mode": MODE, **figures}
    (results / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"\n[reliability] {name}: {json.dumps(figures, sort_keys=True)}")


@pytest.fixture(scope="session")
def capacity_rps(base_url: str, scale: Scale, results: Path) -> float:
    """The mixed workload's answered requests per second, closed loop (measured once)."""
    import asyncio

    from tests.reliability.load import capacity

    measured = asyncio.run(capacity(base_url, scale.capacity_s))
    write_figures(results, "capacity", {"answered_per_s": round(measured, 3)})
    return measured


@pytest.fixture(scope="session")
def decision_log(stack_config: StackConfig) -> Any:
    from tierserve.observe.decision_log import DecisionLog

    return DecisionLog(stack_config.observe.decision_log_path)
