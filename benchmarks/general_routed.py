"""General questions through the gateway: the served policy against each tier alone and the
oracle, on the test split of the labelled mixed set, or on every item of a source the policy was not
calibrated on (docs/evaluation.md).

Every test item of ``--outcomes`` (collected with ``tierserve eval collect general``, each tier
pinned) is sent as an app sends it: unpinned (``model=tierserve``), uncached, at the same
``max_tokens``; the answer is checked here with the set's checker. Per tier alone and for the
oracle, the figures come from the pinned outcomes of the same items. Resumable: rows already in
``--rows`` are kept.

    python benchmarks/general_routed.py --outcomes benchmarks/results/outcomes_general.jsonl \\
        --rows benchmarks/results/general_routed.jsonl --out benchmarks/results/general_routed.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.sweep import oracle
from tierserve.evaluate.tasks import check, load_task_set


def routed(client: httpx.Client, item: Any, max_tokens: int, model: str) -> dict[str, Any]:
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": item.prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
        headers={"Cache-Control": "no-cache"},
    )
    response.raise_for_status()
    body = response.json()
    meta = body["tierserve"]
    answer = body["choices"][0]["message"]["content"] or ""
    return {
        "id": item.id,
        "route": meta["route"],
        "task": meta["task"],
        "answered_by": meta["tier"] or meta["outcome"],
        "tiers_tried": meta["tiers_tried"],
        "cost_usd": meta["cost_usd"],
        "quality": check(item.checker, item.expected, answer),
        "kind": meta["kind"],
        "skipped_tiers": meta["skipped_tiers"],
        "answer": answer[:120],
    }


def summary(rows: list[dict[str, Any]], test: OutcomeSet) -> dict[str, Any]:
    n = len(rows)
    large = test.tiers[-1]
    served = {
        "quality": sum(r["quality"] for r in rows) / n,
        "cost": sum(r["cost_usd"] for r in rows) / n,
        "upstream_calls_per_request": sum(len(r["tiers_tried"]) for r in rows) / n,
        "answered_by": {t: c / n for t, c in Counter(r["answered_by"] for r in rows).items()},
        "routes": dict(Counter(r["route"] for r in rows)),
        "started_at": dict(Counter(r["tiers_tried"][0] for r in rows if r["tiers_tried"])),
    }
    baselines = {
        f"{tier}_only": {"quality": test.quality(tier), "cost": test.cost(tier), "calls": 1.0}
        for tier in test.tiers
    }
    best = oracle(test)
    return {
        "items": n,
        "through_gateway": served,
        **baselines,
        "oracle": {**best.model_dump(), "calls": 1.0},
        "vs_large_only": {
            "quality_delta": served["quality"] - test.quality(large),
            "cost_ratio": served["cost"] / test.cost(large),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--outcomes", type=Path, required=True)
    parser.add_argument("--rows", type=Path, required=True, help="per-item JSONL (resumed)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--task-set", default="general", help="the set the outcomes came from")
    parser.add_argument(
        "--split",
        choices=["test", "all"],
        default="test",
        help="all: every item (a source the served policy was not calibrated on)",
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--model",
        default="tierserve",
        help="tierserve (the served policy) or tierserve/<tier> to measure one tier alone",
    )
    args = parser.parse_args()
    outcomes = OutcomeSet.read(args.outcomes)
    test = outcomes.split("test") if args.split == "test" else outcomes
    wanted = {row.id for row in test.rows}
    items = [item for item in load_task_set(args.task_set) if item.id in wanted]
    done = {}
    if args.rows.exists():
        done = {json.loads(x)["id"]: json.loads(x) for x in args.rows.read_text().splitlines() if x}
    todo = [item for item in items if item.id not in done]
    with (
        httpx.Client(base_url=args.url, timeout=900) as client,
        ThreadPoolExecutor(args.concurrency) as pool,
    ):
        for row in pool.map(lambda item: routed(client, item, args.max_tokens, args.model), todo):
            done[row["id"]] = row
            with args.rows.open("a") as sink:
                sink.write(json.dumps(row) + "\n")
    rows = [done[item.id] for item in items]
    result = summary(rows, OutcomeSet.of([r for r in test.rows if r.id in done], test.tiers))
    result["model"] = args.model
    print(json.dumps(result, indent=1))
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
