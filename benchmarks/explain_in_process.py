"""What the gateway itself spends to plan a request, without Ray Serve in front of it.

The gateway's HTTP app (FastAPI, the real ChatService, the shipped support policy and its
8-bit encoder) is called in this process through httpx's ASGI transport, so no proxy, no
replica hop and no socket: `POST /v1/route/explain` with a task hint and with the classifier,
one caller. Set beside the planning benchmark's figures through a real stack
(benchmarks/results/ingress.json), the difference is what Ray Serve's request path costs.
Writes benchmarks/results/explain_in_process.json.

    python benchmarks/explain_in_process.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tierserve.api.service import ChatService
from tierserve.bench.planning import PLANNING_PROMPTS
from tierserve.bench.report import percentile
from tierserve.config import load_config
from tierserve.engine.types import Generation, GenerationChunk, GenerationRequest
from tierserve.hardware import detect_host
from tierserve.prompt_models.embedder import EmbeddingTaskClassifier, embedder_for
from tierserve.serve.calibration import policy_for_host
from tierserve.serve.http import build_http_app

ROOT = Path(__file__).resolve().parents[1]


class NoTier:
    """Planning calls no tier."""

    async def generate(self, request: GenerationRequest) -> Generation:
        raise AssertionError("explain generated")

    def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        raise AssertionError("explain streamed")


async def _statuses() -> dict[str, dict[str, Any] | str]:
    return {}


def _app(config_path: Path) -> Any:
    config = load_config(config_path)
    policy = policy_for_host(config, detect_host())
    embedder = embedder_for(policy)
    assert embedder is not None and policy.task_classifier is not None
    service = ChatService(
        config,
        {tier.name: NoTier() for tier in config.tiers},
        policy=policy,
        predictor=EmbeddingTaskClassifier(policy.task_classifier, embedder),
        embedder=embedder,
    )
    return build_http_app(service, statuses=_statuses)


async def _timed(app: Any, hint: str | None, count: int) -> dict[str, float]:
    latencies = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        for index in range(count):
            body: dict[str, Any] = {
                "model": "tierserve",
                "messages": [
                    {"role": "user", "content": f"#{index} {PLANNING_PROMPTS[index % 12]}"}
                ],
            }
            if hint:
                body["metadata"] = {"task": hint}
            started = time.perf_counter()
            response = await client.post("/v1/route/explain", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
    return {
        "requests": count,
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=ROOT / "serve_configs/local-cpu.yaml")
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks/results/explain_in_process.json"
    )
    args = parser.parse_args()
    app = _app(args.config)
    asyncio.run(_timed(app, "faq", 20))  # warm
    report = {
        "hint": asyncio.run(_timed(app, "faq", args.count)),
        "classifier": asyncio.run(_timed(app, None, args.count)),
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
