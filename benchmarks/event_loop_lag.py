"""How long planning (eligibility, the embedding classifier, risk) holds the gateway's event loop.

The gateway plans each request with the support policy and its trained classifier. Planned on the
event loop (as the gateway did before), every embedding stalls every other request's stream and
``/healthz``; planned in a worker thread (as :meth:`ChatService._prepare` does now), the loop
stays free. One run measures both on the same requests: a ticker that wakes every 5 ms records
how late it wakes (event-loop lag) while 32 requests are planned 8 at a time, one of them a
40 KB prompt. Writes benchmarks/results/event_loop_lag.json.

    python benchmarks/event_loop_lag.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import load_policy
from tierserve.prompt_models.embedder import EmbeddingTaskClassifier, embedder_for

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "How do I change the email address on my account?",
    "Extract the invoice number and total from: Invoice INV-2231, total 431.20 EUR.",
    "Draft a friendly reply to a customer whose parcel arrived late.",
    "What is your refund policy for annual plans?",
    "my parcel never showed up and nobody answers the phone",
    "can you look at order 5512 and tell me when it ships",
    "the app keeps logging me out after the update",
    "we would like to move our whole team to the yearly plan",
]
LONG_PROMPT = "Please summarise this log line by line. " + "retry after timeout; " * 2000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _measure(plan: Callable[[str], Awaitable[float]], prompts: list[str]) -> dict[str, Any]:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - before - 0.005) * 1000)

    ticking = asyncio.create_task(ticker())
    limit = asyncio.Semaphore(8)

    async def one(prompt: str) -> float:
        async with limit:
            return await plan(prompt)

    started = time.perf_counter()
    plan_ms = await asyncio.gather(*(one(p) for p in prompts))
    wall_s = time.perf_counter() - started
    done.set()
    await ticking
    return {
        "requests": len(prompts),
        "wall_s": round(wall_s, 3),
        "plan_ms_p50": round(statistics.median(plan_ms), 2),
        "plan_ms_p99": round(_percentile(list(plan_ms), 0.99), 2),
        "loop_lag_ms_p50": round(statistics.median(lags), 2),
        "loop_lag_ms_p99": round(_percentile(lags, 0.99), 2),
        "loop_lag_ms_max": round(max(lags), 2),
    }


async def _run() -> dict[str, Any]:
    policy = load_policy(ROOT / "serve_configs/policies/support.yaml", ["small", "medium", "large"])
    assert policy.task_classifier is not None
    embedder = embedder_for(policy)
    assert embedder is not None
    predictor = EmbeddingTaskClassifier(policy.task_classifier, embedder)
    prompts = [PROMPTS[i % len(PROMPTS)] for i in range(31)] + [LONG_PROMPT]

    def timed_plan(prompt: str) -> float:
        started = time.perf_counter()
        plan_route(policy, RequestFacts(text=prompt), predictor)
        return (time.perf_counter() - started) * 1000

    async def on_loop(prompt: str) -> float:
        return timed_plan(prompt)

    async def in_thread(prompt: str) -> float:
        return await asyncio.to_thread(timed_plan, prompt)

    await in_thread(PROMPTS[0])  # load the encoder's kernels before either measurement
    return {
        "on_event_loop (before)": await _measure(on_loop, prompts),
        "in_worker_thread (now)": await _measure(in_thread, prompts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/event_loop_lag.json")
    args = parser.parse_args()
    result = asyncio.run(_run())
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
