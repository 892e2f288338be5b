"""A policy version rolled out to a running gateway (issue 33): what travels in the gateway's
``user_config``, and how a replica swaps the service that decides. (The rollout of a real stack
under load is tests/reliability/test_8_rollout.py.)"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from tests.fakes import (
    FAQ,
    SUPPORT,
    THREE,
    FaqPredictor,
    ListRecorder,
    ScriptedEngine,
)
from tierserve.api.service import ChatService
from tierserve.config import read_serve_config
from tierserve.errors import ConfigError
from tierserve.observe.metrics import POLICY_APPLY_FAILURES, POLICY_VERSION, TierserveMetrics
from tierserve.policy.spec import Policy
from tierserve.serve.http import build_http_app
from tierserve.serve.policy_switch import PolicySwitch
from tierserve.serve.rollout import (
    RESTART_MARK,
    GatewayOptions,
    deploy_config,
    gateway_options,
    restart_options,
)

ROOT = Path(__file__).resolve().parents[3]
NEXT = SUPPORT.model_copy(update={"version": SUPPORT.version + "+next"})
CHAT = {"model": "tierserve", "messages": [{"role": "user", "content": FAQ}]}


def test_the_policy_travels_whole_with_its_keys_hashed() -> None:
    options = gateway_options(SUPPORT)
    shown = json.dumps(options)
    plain = [key for tenant in SUPPORT.tenants for key in tenant.api_keys]
    assert plain and not any(key in shown for key in plain)  # Serve shows deployed configs
    policy = GatewayOptions.model_validate(options).policy
    assert policy is not None and policy.version == SUPPORT.version
    assert policy.routes == SUPPORT.routes and policy.schemas == SUPPORT.schemas
    chat = ChatService(THREE, {}, policy=policy)
    northbank = next(t for t in SUPPORT.tenants if t.api_keys)
    assert chat.authenticate(northbank.api_keys[0]).id == northbank.id


def test_a_restart_surges_one_replica_unless_told_not_to() -> None:
    """Serve's own rolling update starts the new replica before it stops the old one. (A
    deployment Serve reports without a surge value carries Ray's DEFAULT sentinel, which is
    truthy: the restart used to take it for an autoscaler and replaced the tier with no
    surge, so it was absent while its model loaded.)"""
    from ray.serve.schema import DeploymentSchema

    env = {"env_vars": {"KEEP": "1"}}
    plain = DeploymentSchema(
        name="tier-small", num_replicas=1, ray_actor_options={"runtime_env": env}
    )
    surged = restart_options(plain, surge=True)
    assert surged["max_surge_percent"] == 1  # rounded up by Serve: one replica more
    assert restart_options(plain, surge=False)["max_surge_percent"] == 0
    own = DeploymentSchema(name="tier-small", num_replicas=8, max_surge_percent=25)
    assert restart_options(own, surge=True)["max_surge_percent"] == 25
    marked = surged["ray_actor_options"]["runtime_env"]["env_vars"]
    assert marked["KEEP"] == "1" and float(marked[RESTART_MARK]) > 0
    # Serve's config schema takes them as they are sent.
    assert DeploymentSchema(name="tier-small", **surged).max_surge_percent == 1


def test_a_stack_configs_surge_reaches_serve() -> None:
    from ray import serve

    from tierserve.config import DeploymentOptions

    options = DeploymentOptions(max_surge_percent=1).serve_options()
    deployment = serve.deployment(name="tier-small", **options)(object)
    assert deployment._deployment_config.max_surge_percent == 1
    assert "max_surge_percent" not in DeploymentOptions().serve_options()  # Serve's default


def test_gateway_options_refuse_what_they_do_not_know() -> None:
    with pytest.raises(ValueError, match="polcy"):
        GatewayOptions.model_validate({"polcy": {}})


def test_the_deployed_config_names_absolute_paths_and_keeps_the_args(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    app = read_serve_config("serve_configs/local-cpu.yaml")
    config = deploy_config(app, port=18123)
    (deployed,) = config.applications
    assert deployed.import_path == "tierserve.serve.app:build_app"
    assert Path(deployed.args["policy"]).is_absolute()
    assert Path(deployed.args["policy"]) == ROOT / app.args["policy"]
    assert all(Path(p).is_file() for p in deployed.args["policy_calibrations"])
    assert deployed.args["tiers"] == app.args["tiers"]
    assert config.http_options.port == 18123
    assert str(config.proxy_location.value) == "HeadOnly"


def test_the_ingress_runs_where_the_serve_config_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On every node for the GPU configs; on a cluster of one machine's raylets, a proxy per
    node shared the port and a node's death dropped the connections its proxy held."""
    monkeypatch.chdir(ROOT)
    gpu = read_serve_config("serve_configs/gpu-single-80gb.yaml")
    assert gpu.proxy_location == "EveryNode"
    assert str(deploy_config(gpu, port=8000).proxy_location.value) == "EveryNode"
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "serve_configs/local-cpu.yaml").read_text()
    bad.write_text(text.replace("proxy_location: HeadOnly", "proxy_location: Everywhere"))
    with pytest.raises(ConfigError, match="proxy_location 'Everywhere' is not one of Serve's"):
        read_serve_config(bad)


def engines(delay_s: float = 0.0) -> dict[str, ScriptedEngine]:
    return {
        name: ScriptedEngine(name, text=f"{name} answer", logprobs=(-0.01,), delay_s=delay_s)
        for name in ("small", "medium", "large")
    }


def switch_over(
    tiers: dict[str, ScriptedEngine], recorder: ListRecorder, metrics: TierserveMetrics
) -> PolicySwitch:
    def build(policy: Policy) -> ChatService:
        return ChatService(THREE, tiers, policy=policy, predictor=FaqPredictor(), recorder=recorder)

    return PolicySwitch(build, SUPPORT, metrics, THREE)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_a_request_in_flight_keeps_its_version_and_later_ones_take_the_new() -> None:
    recorder, registry = ListRecorder(), CollectorRegistry()
    metrics = TierserveMetrics(registry)
    switch = switch_over(engines(delay_s=0.5), recorder, metrics)
    transport = httpx.ASGITransport(app=_over(switch))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        before = asyncio.create_task(client.post("/v1/chat/completions", json=CHAT))
        await asyncio.sleep(0.1)  # the request has begun under the first version
        await switch.apply(gateway_options(NEXT))
        after = await client.post("/v1/chat/completions", json=CHAT)
        first = await before
        health = (await client.get("/healthz")).json()
    assert first.status_code == after.status_code == 200
    versions = {r.request_id: r.policy_version for r in recorder.records}
    assert versions[first.headers["x-tierserve-request-id"]] == SUPPORT.version
    assert versions[after.headers["x-tierserve-request-id"]] == NEXT.version
    assert health["policy_version"] == NEXT.version
    assert sample(registry, POLICY_VERSION, version=NEXT.version) == 1
    assert sample(registry, POLICY_VERSION, version=SUPPORT.version) == 0


def _over(switch: PolicySwitch) -> FastAPI:
    """The gateway's HTTP app over whatever service ``switch`` holds when a request begins."""

    async def statuses() -> dict[str, dict[str, Any] | str]:
        return {t: {"name": t, "model_version": f"m/{t}"} for t in ("small", "medium", "large")}

    return build_http_app(
        switch.current, statuses=statuses, metrics=TierserveMetrics(CollectorRegistry())
    )


async def test_a_running_replica_keeps_its_last_good_version_when_a_new_one_fails() -> None:
    registry = CollectorRegistry()
    switch = switch_over(engines(), ListRecorder(), TierserveMetrics(registry))
    await switch.apply(gateway_options(NEXT))
    broken = gateway_options(NEXT)
    broken["policy"]["default_tenant"] = "nobody"  # names no tenant: the policy refuses it
    await switch.apply(broken)
    assert switch.current().policy.version == NEXT.version
    assert sample(registry, POLICY_APPLY_FAILURES, version=NEXT.version) == 1


async def test_a_new_replica_given_a_version_it_cannot_load_fails_to_start() -> None:
    switch = switch_over(engines(), ListRecorder(), TierserveMetrics(CollectorRegistry()))
    broken = gateway_options(NEXT)
    broken["policy"]["default_tenant"] = "nobody"
    with pytest.raises(ValueError, match="nobody"):
        await switch.apply(broken)


async def test_no_policy_or_the_same_one_changes_nothing() -> None:
    switch = switch_over(engines(), ListRecorder(), TierserveMetrics(CollectorRegistry()))
    first = switch.current()
    await switch.apply({})
    await switch.apply({"policy": None})
    assert switch.current() is first


def policy_files(version_suffix: str = "") -> dict[str, Any]:
    """The support policy as the chart sends it: its folder's files as text."""
    folder = ROOT / "serve_configs/policies"
    files = {
        str(path.relative_to(folder)): path.read_text()
        for path in folder.rglob("*")
        if path.is_file()
    }
    files["support.yaml"] = files["support.yaml"].replace(
        f"version: {SUPPORT.version}", f"version: {SUPPORT.version}{version_suffix}"
    )
    return {"policy_files": {"file": "support.yaml", "files": files}}


async def test_a_policy_sent_as_its_files_is_loaded_by_the_replica() -> None:
    switch = switch_over(engines(), ListRecorder(), TierserveMetrics(CollectorRegistry()))
    await switch.apply(policy_files("-files"))
    policy = switch.current().policy
    assert policy.version == SUPPORT.version + "-files"
    assert policy.routes == SUPPORT.routes
    assert policy.schemas.keys() == SUPPORT.schemas.keys()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"file": "missing.yaml"}, "missing.yaml"),
        ({"calibrations": ["other.yaml"]}, "other.yaml"),
        ({"files": {"../outside.yaml": "", "support.yaml": ""}}, "../outside.yaml"),
    ],
)
def test_policy_files_name_only_files_inside_their_folder(
    change: dict[str, Any], named: str
) -> None:
    data = policy_files()["policy_files"] | change
    with pytest.raises(ValueError, match=re.escape(named)):
        GatewayOptions.model_validate({"policy_files": data})


def test_a_policy_and_its_files_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        GatewayOptions.model_validate(gateway_options(SUPPORT) | policy_files())
