"""The planning benchmark: how many requests a gateway replica routes a second.

``POST /v1/route/explain`` plans a request as a completion would be planned (eligibility, the
task classifier, risk, question kind, start router) and generates nothing, so its rate is the
gateway's ceiling when the tiers are not the limit. Two paths: prompts the classifier must
read, and the same prompts with a task hint (``metadata.task``), which skips the classifier
and the embedding. Every prompt is new to the gateway (numbered), so no embedding is reused
across requests. Closed loop at each number of callers; latency is the client's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from tierserve.bench.report import percentile

__all__ = ["PLANNING_CALLERS", "PLANNING_PROMPTS", "planning_benchmark"]

PLANNING_CALLERS = (1, 16, 64)

PLANNING_PROMPTS = (
    "What is the capital of Peru?",
    "whats 17 times 23",
    "Which ocean is the largest?",
    "If today is Friday, what day will it be in 10 days?",
    "how many legs do three spiders and two ants have together",
    "Who wrote Pride and Prejudice?",
    "Is 221 a prime number?",
    "What does HTTP stand for?",
    "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive?",
    "name the largest planet in the solar system",
    "What is 15 percent of 240?",
    "Which is heavier, a kilo of feathers or a kilo of iron?",
)
"""Requests no keyword rule catches (each is numbered per request, so none repeats)."""


async def _load(
    base_url: str, bodies: list[dict[str, Any]], callers: int, transport: Any
) -> tuple[list[float], float, list[dict[str, Any]]]:
    import httpx

    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    queue = iter(bodies)
    limits = httpx.Limits(max_connections=callers, max_keepalive_connections=callers)
    async with httpx.AsyncClient(
        base_url=base_url, timeout=60, limits=limits, transport=transport
    ) as client:

        async def caller() -> None:
            for body in queue:
                started = time.perf_counter()
                response = await client.post("/v1/route/explain", json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                answers.append(
                    response.json() if response.status_code == 200 else {"error": response.text}
                )

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, answers


def _bodies(
    prompts: Sequence[str], count: int, start: int, hint: str | None
) -> list[dict[str, Any]]:
    bodies = []
    for index in range(start, start + count):
        body: dict[str, Any] = {
            "model": "tierserve",
            "messages": [{"role": "user", "content": f"#{index} {prompts[index % len(prompts)]}"}],
        }
        if hint is not None:
            body["metadata"] = {"task": hint}
        bodies.append(body)
    return bodies


def planning_benchmark(
    base_url: str,
    prompts: Sequence[str] = PLANNING_PROMPTS,
    *,
    replicas: int,
    callers: Sequence[int] = PLANNING_CALLERS,
    per_caller: int = 8,
    min_requests: int = 64,
    transport: Any = None,
) -> dict[str, Any]:
    """Per path and number of callers: decisions a second per gateway replica, the client's
    p50 and p99, and how the task was found (so the classifier path is seen to classify).
    ``transport``: httpx's, for a gateway app in this process (tests)."""
    rows: list[dict[str, Any]] = []
    sent = 0
    for path, hint in (("classifier", None), ("hint", "faq")):
        for count in callers:
            requests = max(min_requests, per_caller * count)
            bodies = _bodies(prompts, requests, sent, hint)
            sent += requests
            latencies, elapsed, answers = asyncio.run(_load(base_url, bodies, count, transport))
            sources: dict[str, int] = {}
            for answer in answers:
                source = str(answer.get("task", {}).get("source", "error"))
                sources[source] = sources.get(source, 0) + 1
            rows.append(
                {
                    "path": path,
                    "callers": count,
                    "requests": requests,
                    "decisions_per_s_per_replica": round(requests / elapsed / replicas, 1),
                    "p50_ms": round(percentile(latencies, 50), 2),
                    "p99_ms": round(percentile(latencies, 99), 2),
                    "task_sources": sources,
                }
            )
    return {"replicas": replicas, "runs": rows, "ratios": _ratios(rows)}


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Classifier path against hint path, p50, at each number of callers."""
    by = {(r["path"], r["callers"]): r for r in rows}
    return {
        f"classifier_vs_hint_p50_c{c}": round(
            by[("classifier", c)]["p50_ms"] / by[("hint", c)]["p50_ms"], 2
        )
        for (path, c) in by
        if path == "classifier" and ("hint", c) in by
    }
