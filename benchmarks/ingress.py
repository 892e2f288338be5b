"""How requests reach the gateway: Ray Serve's Python proxy or its HAProxy ingress, measured in
one run. (Ray 2.60's direct ingress, `RAY_SERVE_ENABLE_DIRECT_INGRESS=1`, did not start here:
its proxy and the gateway replica both bind the HTTP port.)

For each ingress the stack is started from the same serve config (its `gateway.ingress` set),
and the planning benchmark runs against it (`POST /v1/route/explain` at 1, 16 and 64 callers,
with the classifier and with a task hint: the gateway's own work, no generation), then a few
chat completions pinned to the small tier check that answers come back through it. Writes
benchmarks/results/ingress.json.

    python benchmarks/ingress.py [serve_configs/local-cpu.yaml]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tierserve.bench.planning import PLANNING_CALLERS, planning_benchmark
from tierserve.bench.processes import running_server
from tierserve.bench.targets import bench_serve_config, stack_command

ROOT = Path(__file__).resolve().parents[1]
INGRESSES = ("proxy", "haproxy")
PORT = 8102


def _completions(base_url: str, count: int) -> dict[str, Any]:
    latencies, answered = [], 0
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for index in range(count):
            started = time.perf_counter()
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": "tierserve/small",
                    "messages": [{"role": "user", "content": f"#{index} What is 2 + 2?"}],
                    "max_tokens": 8,
                },
            )
            latencies.append((time.perf_counter() - started) * 1000)
            answered += response.status_code == 200 and bool(
                response.json()["choices"][0]["message"]["content"]
            )
    return {"requests": count, "answered": answered, "mean_ms": sum(latencies) / count}


def measure(serve_config: Path, ingress: str, scratch: Path) -> dict[str, Any]:
    data = bench_serve_config(serve_config, scratch, port=PORT)
    data["applications"][0]["args"].setdefault("gateway", {})["ingress"] = ingress
    config = scratch / f"serve-{ingress}.yaml"
    config.write_text(yaml.safe_dump(data))
    base_url = f"http://127.0.0.1:{PORT}"
    with running_server(
        stack_command(config),
        ready_url=base_url + "/healthz",
        log_path=scratch / f"{ingress}.log",
        timeout_s=900,
    ) as ready_s:
        planning = planning_benchmark(base_url, replicas=1, callers=PLANNING_CALLERS)
        completions = _completions(base_url, 8)
    return {
        "ingress": ingress,
        "ready_s": round(ready_s, 1),
        "planning": planning,
        "completions": completions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "config", nargs="?", type=Path, default=ROOT / "serve_configs/local-cpu.yaml"
    )
    parser.add_argument("--ingress", action="append", choices=INGRESSES)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ingress.json")
    args = parser.parse_args()
    results = []
    runs = ROOT / "build/ingress"  # each stack's config and log, kept for reading
    runs.mkdir(parents=True, exist_ok=True)
    for ingress in args.ingress or INGRESSES:
        results.append(measure(args.config, ingress, runs))
        print(json.dumps(results[-1]["planning"]["runs"], indent=None))
    args.out.write_text(json.dumps({"config": str(args.config), "runs": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
