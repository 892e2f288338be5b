"""Issue 32: the stack on a Ray cluster of three nodes, as on KubeRay. Each tier lands on the
node its config asks for (by the custom resource its worker group declares), the gateway's two
replicas on two nodes; then, under load, the worker node holding the small tier is killed
(its raylet and everything on it). Its requests climb the ladder or get a 503 with
Retry-After, nothing hangs, every answered request has its record, and no engine process of
the lost node is left."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import policy_data
from tests.reliability.load import Reply, open_loop, refused, summary, unclean
from tierserve.config import read_serve_config
from tierserve.observe.decision_log import DecisionLog, LogQuery

ROOT = Path(__file__).resolve().parents[2]
PORT = int(os.environ.get("TIERSERVE_MULTINODE_PORT", "18769"))
OUT = Path(os.environ.get("TIERSERVE_MULTINODE_OUT", "benchmarks/results/multinode"))
APP = "tierserve"
PLACES = {"small": {"group_a": 1}, "medium": {"group_b": 1}, "large": {"head_group": 1}}
"""Each tier's worker group, by the custom resource only that group's node declares."""
RATE = 0.3
"""Requests per second: below what the three tiers on 2 cores answer."""
BEFORE_S, AFTER_S = 40.0, 120.0
SETTLE_S = 15.0
"""Time Serve takes to see the lost node's replica gone (its router saw it in 5 s)."""


def write_config(directory: Path) -> Path:
    serve = yaml.safe_load((ROOT / "serve_configs/local-cpu.yaml").read_text())
    args = serve["applications"][0]["args"]
    policy = policy_data(ROOT / args["policy"])
    policy["version"] += "+multinode"
    policy_path = directory / "policy.yaml"
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    args["policy"] = str(policy_path)
    args.pop("policy_calibrations", None)
    args["cascade"].update(
        request_deadline_s=90, tier_timeout_s=60, breaker_failures=3, breaker_cooldown_s=15
    )
    args["gateway"].update(
        ingress="proxy",  # one Serve proxy, on the head: HAProxy binds per node, one port here
        placement="anywhere",
        resources={"gateway_group": 0.01},  # the CPU groups' nodes, one replica on each
        default_max_tokens=32,
        max_tokens_limit=64,
        deployment={
            "num_replicas": 2,
            "max_replicas_per_node": 1,
            "max_ongoing_requests": 24,
            "max_queued_requests": 16,
        },
    )
    for tier in args["tiers"]:
        tier["resources"] = PLACES[tier["name"]]
        tier["deployment"] = {"max_ongoing_requests": 4, "max_queued_requests": 4}
    serve["http_options"]["port"] = PORT
    path = directory / "multinode.yaml"
    path.write_text(yaml.safe_dump(serve, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    from tierserve.serve.ingress import apply_ingress

    state = Path(tempfile.mkdtemp(prefix="tierserve-multinode-"))
    os.environ["TIERSERVE_STATE_DIR"] = str(state)
    config = write_config(state)
    # Before the raylets start: they take the ingress choice from this environment.
    apply_ingress(read_serve_config(config).stack, http_port=PORT)
    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "resources": {"head_group": 1, "gateway_group": 1}},
    )
    workers = {
        "group_a": nodes.add_node(num_cpus=1, resources={"group_a": 1}),
        "group_b": nodes.add_node(num_cpus=1, resources={"group_b": 1, "gateway_group": 1}),
    }
    nodes.wait_for_nodes()
    import ray

    ray.init(address=nodes.address, log_to_driver=False)
    yield nodes, workers, config
    ray.shutdown()
    nodes.shutdown()


def replica_nodes(deployment: str) -> list[str]:
    from tierserve.serve.rollout import _running

    details, _ = _running(APP)
    replicas = details.applications[APP].deployments[deployment].replicas
    return [r.node_id for r in replicas if str(r.state).endswith("RUNNING")]


def still_running(pids: set[int]) -> list[str]:
    """Those of ``pids`` still running (a zombie has ended), with their titles."""
    import psutil

    left = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            if process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{pid} {' '.join(process.cmdline())[:60]}")
        except psutil.Error:
            continue
    return left


def test_a_lost_worker_node_fails_no_request_silently(cluster: Any) -> None:
    import psutil

    from tierserve.launch import start_stack, stop_stack

    nodes, workers, config = cluster
    url, seconds = start_stack(config, port=PORT)
    print(f"\n[multinode] stack ready in {seconds:.0f} s")
    head_id = nodes.head_node.node_id
    ids = {"group_a": workers["group_a"].node_id, "group_b": workers["group_b"].node_id}
    placed = {
        "small": replica_nodes("tier-small"),
        "medium": replica_nodes("tier-medium"),
        "large": replica_nodes("tier-large"),
        "gateway": replica_nodes("gateway"),
    }
    lost = workers["group_a"]
    raylet = psutil.Process(lost.all_processes["raylet"][0].process.pid)
    lost_processes = {p.pid for p in raylet.children(recursive=True)}

    started = time.time()

    async def run() -> list[Reply]:
        async def kill_later() -> float:
            await asyncio.sleep(BEFORE_S)
            at = time.time()
            await asyncio.to_thread(nodes.remove_node, lost, False)
            return at

        killer = asyncio.create_task(kill_later())
        replies = await open_loop(url, RATE, BEFORE_S + AFTER_S)
        kill_times.append(await killer)
        return replies

    kill_times: list[float] = []
    replies = asyncio.run(run())
    time.sleep(2)
    log = DecisionLog(read_serve_config(config).stack.observe.decision_log_path)
    records = {r.request_id: r for r in log.query(LogQuery(since=started - 1))}
    answered = [r for r in replies if r.status == 200]
    after = [r for r in replies if r.sent_at > kill_times[0]]
    served_by = Counter(
        records[r.headers["x-tierserve-request-id"]].answered_by
        for r in after
        if r.status == 200 and r.headers.get("x-tierserve-request-id") in records
    )
    time.sleep(10)  # the lost node's engines have their guards' grace to end
    figures = {
        **summary(replies),
        "nodes": {"head": head_id, **ids},
        "placed": placed,
        "killed_node_at_s": round(kill_times[0] - started, 1),
        "after_kill": summary(after),
        "after_kill_served_by": dict(served_by),
        "answered_missing_from_log": sum(
            1 for r in answered if r.headers.get("x-tierserve-request-id") not in records
        ),
        "processes_of_lost_node": len(lost_processes),
        "left_of_lost_node": still_running(lost_processes),
        "unclean": unclean(replies)[:20],
        "refused": refused(replies, started),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "worker_node_lost.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    print(f"[multinode] {json.dumps(figures, sort_keys=True)}")
    stop_stack(PORT)
    assert placed["small"] == [ids["group_a"]], placed
    assert placed["medium"] == [ids["group_b"]], placed
    assert placed["large"] == [head_id], placed
    assert sorted(placed["gateway"]) == sorted([head_id, ids["group_b"]]), placed
    assert not figures["unclean"], figures["unclean"]
    assert figures["answered_missing_from_log"] == 0, figures
    assert after and all(r.status is not None for r in after)  # nothing hung
    # Once Serve knows the node is gone (seconds), the lost tier's pinned requests get a 503
    # with Retry-After at once, and the others climb the ladder without waiting for it.
    settled = [r for r in after if r.sent_at > kill_times[0] + SETTLE_S]
    assert all(
        r.status == 503 and r.retry_after and r.seconds < 2 for r in settled if r.kind == "small"
    )
    assert all(r.status in (200, 429) for r in settled if r.kind != "small"), figures["refused"]
    assert not figures["left_of_lost_node"], figures
