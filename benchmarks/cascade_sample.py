"""Measure the cascade on a small labelled sample through a running stack.

For every question: each tier pinned alone (answer, correctness, confidence, latency), then the
cascade (which tier answered, the path, correctness). Writes benchmarks/results/cascade_sample.json.

    python benchmarks/cascade_sample.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from openai import OpenAI

from tierserve.model_names import pinned_model

HERE = Path(__file__).resolve().parent


def run(client: OpenAI, model: str, question: str, task: str | None) -> dict[str, Any]:
    started = time.monotonic()
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=48,
        extra_body={"metadata": {"task": task}} if task else None,
    )
    meta = (completion.model_extra or {})["tierserve"]
    return {
        "text": completion.choices[0].message.content,
        "tier": meta["tier"] or meta["outcome"],
        "tiers_tried": meta["tiers_tried"],
        "reasons": meta["reasons"],
        "confidence": meta["confidence"],
        "e2e_s": round(time.monotonic() - started, 3),
        "tier_latency_ms": [round(step["latency_s"] * 1000, 1) for step in meta["steps"]],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--tiers", default="small,medium,large")
    parser.add_argument("--task", default="faq", help="task hint sent with every question")
    parser.add_argument("--out", type=Path, default=HERE / "results/cascade_sample.json")
    args = parser.parse_args()
    client = OpenAI(base_url=f"{args.url}/v1", api_key="unused", timeout=600, max_retries=0)
    tiers = args.tiers.split(",")
    rows = [json.loads(line) for line in (HERE / "questions.jsonl").read_text().splitlines()]
    results = []
    for row in rows:
        entry: dict[str, Any] = {"question": row["q"], "expected": row["a"]}
        for model in [pinned_model("tierserve", t) for t in tiers] + ["tierserve"]:
            outcome = run(client, model, row["q"], args.task or None)
            outcome["correct"] = any(a.lower() in (outcome["text"] or "").lower() for a in row["a"])
            entry[model] = outcome
        results.append(entry)
        cascade = entry["tierserve"]
        print(
            f"{cascade['tier']:>6} {cascade['correct']!s:>5} {row['q'][:50]:<50} "
            + " ".join(
                f"{t}={entry['tierserve/' + t]['confidence']:.2f}"
                f"{'+' if entry['tierserve/' + t]['correct'] else '-'}"
                for t in tiers
            )
        )
    share = Counter(r["tierserve"]["tier"] or r["tierserve"]["outcome"] for r in results)
    summary = {
        "questions": len(results),
        "cascade_share": {t: share.get(t, 0) / len(results) for t in tiers},
        "cascade_accuracy": sum(r["tierserve"]["correct"] for r in results) / len(results),
        "accuracy_by_tier_alone": {
            t: sum(r[pinned_model("tierserve", t)]["correct"] for r in results) / len(results)
            for t in tiers
        },
        "median_latency_s_by_tier_alone": {
            t: statistics.median(r[pinned_model("tierserve", t)]["e2e_s"] for r in results)
            for t in tiers
        },
        "median_cascade_latency_s": statistics.median(r["tierserve"]["e2e_s"] for r in results),
    }
    print(json.dumps(summary, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": summary, "results": results}, indent=2))


if __name__ == "__main__":
    main()
