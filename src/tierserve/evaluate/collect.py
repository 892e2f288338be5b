"""``tierserve eval collect``: run every tier of a running stack over a task set and write
outcome rows (quality by the task's checker, cost, latency, tokens, confidence signals).

Each tier is pinned (``model=tierserve/<tier>``) and asked for a fresh answer
(``Cache-Control: no-cache``); the row is appended once every tier has answered, so an
interrupted run resumes where it stopped. ``concurrency`` items are asked at once, so each
tier's engine batches them: on CPU this is most of the speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tierserve.errors import TierserveError
from tierserve.evaluate.importers import stable_split
from tierserve.evaluate.outcomes import Labels, OutcomeRow, TierOutcome
from tierserve.evaluate.tasks import TaskItem, check

__all__ = ["collect", "served_tiers"]


def served_tiers(client: httpx.Client) -> list[str]:
    models = client.get("/v1/models").json()["data"]
    return [m["id"].split("/", 1)[1] for m in models if "/" in m["id"]]


def _ask(client: httpx.Client, tier: str, item: TaskItem, max_tokens: int) -> TierOutcome:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": f"tierserve/{tier}",
            "messages": [{"role": "user", "content": item.prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "metadata": {"task": item.task},
        },
        headers={"Cache-Control": "no-cache"},
    )
    if response.status_code != 200:
        raise TierserveError(
            f"tier {tier!r} refused {item.id}: {response.status_code} {response.text[:300]}",
            hint="check the stack (/healthz) and rerun; finished rows are kept",
        )
    body: dict[str, Any] = response.json()
    meta = body["tierserve"]
    step = meta["steps"][0]
    answer = body["choices"][0]["message"]["content"] or ""
    return TierOutcome(
        quality=check(item.checker, item.expected, answer),
        cost=meta["cost_usd"],
        latency_s=step["latency_ms"] / 1000.0,
        prompt_tokens=step["prompt_tokens"],
        completion_tokens=step["completion_tokens"],
        signals=step.get("signals") or {},
        answer=answer,
    )


def _row(client: httpx.Client, tiers: list[str], item: TaskItem, **run: Any) -> OutcomeRow:
    return OutcomeRow(
        id=item.id,
        prompt=item.prompt,
        split=stable_split(item.id, run["test_fraction"]),
        labels=Labels(
            task=item.task, expected=item.expected, checker=item.checker, source=run["source"]
        ),
        outcomes={tier: _ask(client, tier, item, run["max_tokens"]) for tier in tiers},
    )


def collect(
    url: str,
    items: Sequence[TaskItem],
    out: Path,
    *,
    source: str,
    max_tokens: int = 256,
    test_fraction: float = 0.5,
    concurrency: int = 1,
    progress: bool = True,
) -> int:
    """Appends a row per item not yet in ``out``; returns how many it added."""
    from tqdm import tqdm

    if concurrency < 1:
        raise TierserveError(
            f"concurrency must be at least 1, got {concurrency}", hint="use --concurrency 4"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {OutcomeRow.model_validate_json(x).id for x in out.read_text().splitlines() if x}
    todo = [item for item in items if item.id not in done]
    run = {"source": source, "max_tokens": max_tokens, "test_fraction": test_fraction}
    added = 0
    with (
        httpx.Client(base_url=url, timeout=900) as client,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):
        tiers = served_tiers(client)
        pending = [pool.submit(_row, client, tiers, item, **run) for item in todo]
        try:
            # In item order, so reruns give the same file; a slow item holds back at most
            # `concurrency` finished ones.
            for future in tqdm(pending, desc=f"collect {source}", disable=not progress):
                with out.open("a") as sink:
                    sink.write(future.result().model_dump_json(exclude_none=True) + "\n")
                added += 1
        finally:
            for future in pending:
                future.cancel()
    return added
