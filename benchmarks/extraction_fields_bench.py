"""Caller-schema extraction through the stack: each tier alone, then the routed ladder.

Each case of ``extraction_fields/cases.jsonl`` (104: invoices, contacts, orders, tickets) is sent
as an app sends it: the text as the user message, the app's own JSON schema in
``response_format`` (no registered schema, no "extract" in the wording). Every returned field is
compared with the label here, not taken from the gateway.

``--mode tiers`` pins each tier (``model=tierserve/<tier>``) and writes one row per case and
tier: the step the gateway recorded (field readings, validator results, cost) and which fields
were right. ``tierserve eval fields`` calibrates a route's field thresholds on those rows.
``--mode routed`` sends the test split to the cascade (``model=tierserve``) and records what
the served policy did: answering tier, outcome, uncertain fields, cost, upstream calls.
Both are resumable (rows already in ``--out`` are skipped). ``--mode rejudge`` brings tier rows
recorded before the gateway read kinds of value and ran the ``copied`` check up to both, from
their recorded answers.

    make bench-extraction-fields      # both, then the calibration (see the Makefile)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openai import OpenAI, PermissionDeniedError

from tierserve.evaluate.fields import unmarked
from tierserve.signals.fields import field_pattern
from tierserve.signals.value_kinds import value_kinds
from tierserve.validate import ValidationContext, run_validators

HERE = Path(__file__).resolve().parent
CASES = HERE / "extraction_fields" / "cases.jsonl"
SCHEMAS = json.loads((HERE / "extraction_fields" / "schemas.json").read_text())
MAX_TOKENS = 200


def field_right(expected: Any, got: Any) -> bool:
    """Strings compare without case and outer spaces; numbers within a cent; the rest exactly."""
    if isinstance(expected, bool) or expected is None:
        return got is expected
    if isinstance(expected, int | float):
        ok = isinstance(got, int | float) and not isinstance(got, bool)
        return ok and abs(got - expected) <= 0.01
    if isinstance(expected, str):
        return isinstance(got, str) and got.strip().casefold() == expected.casefold()
    return bool(got == expected)


def judged(case: dict[str, Any], content: str | None) -> dict[str, bool]:
    try:
        got = json.loads(content or "")
    except json.JSONDecodeError:
        got = None
    got = got if isinstance(got, dict) else {}
    return {name: field_right(value, got.get(name)) for name, value in case["expected"].items()}


def ask(client: OpenAI, case: dict[str, Any], model: str) -> tuple[Any, float]:
    started = time.monotonic()
    completion = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": case["text"]}],
        temperature=0,
        max_tokens=MAX_TOKENS,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": case["kind"], "schema": SCHEMAS[case["kind"]]},
        },
    )
    return completion, time.monotonic() - started


def tier_row(client: OpenAI, case: dict[str, Any], tier: str) -> dict[str, Any]:
    row = {"id": case["id"], "kind": case["kind"], "split": case["split"], "tier": tier}
    try:
        completion, latency = ask(client, case, f"tierserve/{tier}")
    except PermissionDeniedError as error:  # personal data never goes to this tier
        return {**row, "refused": str(error.message)[:200], "correct": {}}
    meta = (completion.model_extra or {})["tierserve"]
    content = completion.choices[0].message.content
    return {
        **row,
        "step": meta["steps"][0],
        "correct": judged(case, content),
        "answer": content,
        "latency_s": round(latency, 3),
    }


def rejudged(row: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """A tier row recorded before the gateway read kinds of value and ran the ``copied`` check,
    brought up to them from its recorded answer: both are pure functions of the answer, the
    schema and the text, computed here by the gateway's own code, so the row is what the
    gateway records today for the same answer."""
    step = row.get("step")
    if step is None or any(v["name"] == "copied" for v in step["validations"]):
        return row
    schema = SCHEMAS[case["kind"]]
    kinds = value_kinds(schema)
    for reading in step["fields"]:
        reading["kind"] = kinds.get(field_pattern(reading["path"]))
    context = ValidationContext(json_schema=schema, input_text=case["text"])
    (copied,) = run_validators(("copied",), row["answer"] or "", context)
    step["validations"].append(
        {
            "name": copied.name,
            "passed": copied.passed,
            "detail": copied.detail,
            "fields": list(copied.fields),
        }
    )
    step["validators"] = [*step["validators"], "copied"]
    return {**row, "rejudged": "field kinds and the copied check added from the recorded answer"}


def routed_row(client: OpenAI, case: dict[str, Any]) -> dict[str, Any]:
    completion, latency = ask(client, case, "tierserve")
    meta = (completion.model_extra or {})["tierserve"]
    content = completion.choices[0].message.content
    delivered = meta["outcome"] == "accept"
    correct = judged(case, content) if delivered else dict.fromkeys(case["expected"], False)
    return {
        "id": case["id"],
        "kind": case["kind"],
        "split": case["split"],
        "policy": meta["policy_version"],
        "route": meta["route"],
        "task": meta["task"],
        "outcome": meta["outcome"],
        "tier": meta["tier"] or meta["outcome"],
        "tiers_tried": meta["tiers_tried"],
        "reasons": meta["reasons"],
        "uncertain_fields": meta.get("uncertain_fields", []),
        "cost_usd": meta["cost_usd"],
        "correct": correct,
        "answer": content,
        "latency_s": round(latency, 3),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The routed run's figures, defined as `tierserve eval fields` defines them."""
    n = len(rows)
    delivered = [r for r in rows if r["outcome"] == "accept"]
    flagged = [r for r in rows if r["outcome"] != "accept" or r["uncertain_fields"]]
    wrong_silent = [
        r
        for r in delivered
        if unmarked([k for k, right in r["correct"].items() if not right], r["uncertain_fields"])
    ]
    fields = sum(len(r["correct"]) for r in rows)
    return {
        "cases": n,
        "all_fields_right": sum(all(r["correct"].values()) for r in rows) / n,
        "field_accuracy": sum(sum(r["correct"].values()) for r in rows) / fields,
        "silent_wrong": len(wrong_silent) / n,
        "flagged": len(flagged) / n,
        "escalated": sum(len(r["tiers_tried"]) > 1 for r in rows) / n,
        "cost_per_case": sum(r["cost_usd"] for r in rows) / n,
        "calls_per_case": sum(len(r["tiers_tried"]) for r in rows) / n,
        "routes": sorted({r["route"] for r in rows}),
        "answered_by": {
            t: sum(r["tier"] == t for r in rows) for t in sorted({r["tier"] for r in rows})
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument(
        "--mode",
        choices=["tiers", "routed", "rejudge"],
        required=True,
        help="rejudge: bring --out's tier rows up to the gateway's current field checks",
    )
    parser.add_argument("--tiers", default="small,medium,large")
    parser.add_argument("--split", choices=["all", "train", "test"], default="all")
    parser.add_argument("--limit", type=int, default=0, help="first N cases (0: all)")
    parser.add_argument("--family", help="only this schema family's cases (e.g. shipment)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True, help="rows JSONL (resumed)")
    parser.add_argument("--summary", type=Path, help="routed mode: write the figures here")
    args = parser.parse_args()

    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    if args.mode == "rejudge":
        by_id = {c["id"]: c for c in cases}
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        brought = [rejudged(row, by_id[row["id"]]) for row in rows]
        args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in brought))
        print(f"{sum('rejudged' in r for r in brought)} of {len(brought)} rows rejudged")
        return 0
    cases = [c for c in cases if args.split in ("all", c["split"])]
    cases = [c for c in cases if args.family in (None, c["kind"])]
    cases = cases[: args.limit or None]
    done: set[tuple[str, str]] = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["id"], row["tier"] if args.mode == "tiers" else "routed"))
    client = OpenAI(base_url=f"{args.url}/v1", api_key="sk-internal-demo", timeout=900)
    if args.mode == "tiers":
        jobs = [
            (case, tier)
            for tier in args.tiers.split(",")
            for case in cases
            if (case["id"], tier) not in done
        ]
    else:
        jobs = [(case, "routed") for case in cases if (case["id"], "routed") not in done]
    lock = threading.Lock()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def run(job: tuple[dict[str, Any], str]) -> None:
        case, tier = job
        row = routed_row(client, case) if tier == "routed" else tier_row(client, case, tier)
        with lock, args.out.open("a") as out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            print(
                f"{case['id']} {tier}: {sum(row['correct'].values())}/{len(row['correct'])}",
                flush=True,
            )

    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(run, jobs))
    if args.mode == "routed" and args.summary is not None:
        ids = {c["id"] for c in cases}
        rows = [json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]
        figures = summary([r for r in rows if r["id"] in ids])
        args.summary.write_text(json.dumps(figures, indent=1) + "\n")
        print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
