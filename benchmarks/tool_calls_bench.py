"""Tool calls on every tier and through the gated ladder, on a labelled set, through the stack.

For each case in ``tools/cases.jsonl`` (36 requests offering two or three tools, a third of
them with ``tool_choice: required``), each tier is pinned (``model=tierserve/<tier>``: its
answer is returned whatever the gate says, as an ungated deployment of that tier would), then
the cascade (``model=tierserve``: the policy's ``tools`` route, whose ``tool_args`` gate
escalates an invalid or missing call). Every call is checked here, not taken from the
gateway's verdict:

* valid: one call, of a tool offered, with JSON arguments its schema accepts;
* correct: valid, of the labelled tool, carrying the labelled argument values;
* silent invalid: an answer handed to the app as final (not a safe failure) whose call is
  invalid or missing where one was labelled.

    python benchmarks/tool_calls_bench.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tierserve.validate import ProposedCall, ToolContract
from tierserve.validate.tool_args import check_tool_args

HERE = Path(__file__).resolve().parent
MODELS = ("tierserve/small", "tierserve/medium", "tierserve/large", "tierserve")


def check_call(case: dict[str, Any], calls: list[dict[str, Any]]) -> tuple[bool, bool]:
    """(valid, correct) for the calls an answer made, judged by the project's tool_args check
    as one required call (not by the gateway's reported verdict)."""
    offered = ToolContract(
        {t["function"]["name"]: t["function"]["parameters"] for t in case["tools"]},
        choice="required",
        parallel=False,
    )
    proposed = [ProposedCall(c["function"]["name"], c["function"]["arguments"]) for c in calls]
    valid, _ = check_tool_args(proposed, False, offered)
    if not valid:
        return False, False
    arguments = json.loads(proposed[0].arguments)
    expected = case["expected"]
    same = proposed[0].name == expected["name"] and all(
        _same(arguments.get(key), value) for key, value in expected["arguments"].items()
    )
    return True, same


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, str):
        return isinstance(got, str) and got.strip().lower() == want.lower()
    return isinstance(got, int | float) and abs(got - want) < 1e-6


def run_case(session: httpx.Client, model: str, case: dict[str, Any]) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": case["messages"],
        "tools": case["tools"],
        "tool_choice": case["tool_choice"],
        "temperature": 0,
        "max_tokens": 160,
    }
    started = time.monotonic()
    response = session.post("/v1/chat/completions", json=body)
    seconds = time.monotonic() - started
    if response.status_code != 200:
        return {"id": case["id"], "model": model, "status": response.status_code}
    answer = response.json()
    message = answer["choices"][0]["message"]
    calls = message.get("tool_calls") or []
    meta = answer["tierserve"]
    valid, correct = check_call(case, calls)
    final = meta["outcome"] == "accept"
    return {
        "id": case["id"],
        "model": model,
        "status": 200,
        "valid": valid,
        "correct": correct,
        "silent_invalid": final and not valid,
        "outcome": meta["outcome"],
        "tier": meta["tier"],
        "tiers_tried": meta["tiers_tried"],
        "reasons": meta["reasons"],
        "cost_usd": meta["cost_usd"],
        "seconds": round(seconds, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if r["status"] == 200]
    count = len(rows)

    def share(key: str) -> float:
        return round(sum(bool(r.get(key)) for r in answered) / count, 4)

    return {
        "requests": count,
        "errors": count - len(answered),
        "valid_call_rate": share("valid"),
        "correct_call_rate": share("correct"),
        "silent_invalid_rate": share("silent_invalid"),
        "safe_failure_rate": round(
            sum(r.get("outcome") == "safe_failure" for r in answered) / count, 4
        ),
        "escalated_rate": round(sum(len(r["tiers_tried"]) > 1 for r in answered) / count, 4),
        "upstream_calls_per_request": round(
            sum(len(r["tiers_tried"]) for r in answered) / count, 3
        ),
        "answered_by": {
            tier: sum(r["tier"] == tier for r in answered)
            for tier in sorted({r["tier"] for r in answered})
        },
        "cost_usd_per_request": sum(r["cost_usd"] for r in answered) / count,
        "p50_seconds": statistics.median(r["seconds"] for r in answered) if answered else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--cases", type=Path, default=HERE / "tools/cases.jsonl")
    parser.add_argument("--limit", type=int, help="the first N cases only (smoke runs)")
    parser.add_argument("--out", type=Path, default=HERE / "results/tool_calls.json")
    args = parser.parse_args()
    cases = [json.loads(line) for line in args.cases.read_text().splitlines() if line.strip()]
    cases = cases[: args.limit] if args.limit else cases
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=args.url, timeout=600) as session:
        for model in MODELS:
            for case in cases:
                rows.append(run_case(session, model, case))
                print(json.dumps(rows[-1]), file=sys.stderr)
    by_model = {model: summary([r for r in rows if r["model"] == model]) for model in MODELS}
    large = by_model["tierserve/large"]["cost_usd_per_request"]
    for figures in by_model.values():
        figures["cost_vs_large_only"] = (
            round(figures["cost_usd_per_request"] / large, 3) if large else None
        )
    report = {"cases": len(cases), "by_model": by_model, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(by_model, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
