"""Extraction on every tier, with and without Outlines-constrained decoding, through the stack.

For each case in ``extraction/cases.jsonl`` (52: support emails and invoices), each tier is
pinned (``model=tierserve/<tier>``), the registered schema is selected by name
(``response_format={"type": "json_schema", "json_schema": {"name": ...}}``) and decoding is set
with ``metadata.decoding``. Every returned text is checked here with the project's validators
(not taken from the gateway's reported verdict): valid JSON matching the schema, the schema's
semantic rules, and field-level accuracy against the expected values. Latency is the client's
wall time; by default one tier is measured at a time (``--concurrency`` runs tiers side by
side, sharing the CPU cores).

Then the compile cost of a new schema, through the stack: a never-seen schema is sent twice to
each tier; the first request pays the Outlines index compile, the second hits vLLM's cache.

    python benchmarks/extraction_bench.py --url http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from openai import OpenAI

from tierserve.config import load_config
from tierserve.hardware import detect_host
from tierserve.model_names import pinned_model
from tierserve.policy.spec import Policy
from tierserve.serve.calibration import policy_for_host
from tierserve.validate import ValidationContext, run_validators

HERE = Path(__file__).resolve().parent
MODES = ("constrained", "unconstrained")
MAX_TOKENS = 384  # above the longest answer either schema allows in practice (~270 tokens)


def prompt(case: dict[str, Any]) -> str:
    return f"Extract the {case['schema']} fields from this text:\n\n{case['text']}"


def _close(a: Any, b: Any) -> bool:
    return isinstance(a, int | float) and not isinstance(a, bool) and abs(a - b) <= 0.01


def field_scores(schema: str, got: Any, expected: dict[str, Any]) -> dict[str, bool]:
    """Per field: does the extraction hold the expected value?"""
    got = got if isinstance(got, dict) else {}
    if schema == "ticket":
        exact = ["customer_id", "issue_type", "severity", "refund_requested"]
        scores = {name: got.get(name) == expected[name] for name in exact}
        dates = got.get("dates")
        scores["dates"] = isinstance(dates, list) and set(map(str, dates)) == set(expected["dates"])
        return scores
    vendor = got.get("vendor")
    scores = {
        "vendor": isinstance(vendor, str) and vendor.lower() == expected["vendor"].lower(),
        "invoice_number": got.get("invoice_number") == expected["invoice_number"],
        "date": got.get("date") == expected["date"],
        "currency": got.get("currency") == expected["currency"],
        "total": _close(got.get("total"), expected["total"]),
    }
    items = got.get("line_items")
    amounts = (
        [i.get("amount") for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    )
    wanted = sorted(i["amount"] for i in expected["line_items"])
    numeric = [a for a in amounts if _close(a, a)]
    scores["line_items"] = len(numeric) == len(amounts) == len(wanted) and all(
        _close(a, b) for a, b in zip(sorted(numeric), wanted, strict=True)
    )
    return scores


def ask(client: OpenAI, tier: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    started = time.monotonic()
    completion = client.chat.completions.create(
        model=pinned_model("tierserve", tier),
        messages=[{"role": "user", "content": prompt(case)}],
        temperature=0,
        max_tokens=MAX_TOKENS,
        response_format={"type": "json_schema", "json_schema": {"name": case["schema"]}},
        extra_body={"metadata": {"decoding": mode}},
    )
    meta = (completion.model_extra or {})["tierserve"]
    return {
        "text": completion.choices[0].message.content or "",
        "finish_reason": completion.choices[0].finish_reason,
        "latency_s": round(time.monotonic() - started, 3),
        "completion_tokens": completion.usage.completion_tokens if completion.usage else 0,
        "prompt_tokens": completion.usage.prompt_tokens if completion.usage else 0,
        "gateway_validations": meta["steps"][0]["validations"],
        "constrained": meta["steps"][0]["constrained"],
    }


def judge(policy: Policy, case: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The project's own schema and semantic validators, run here on the returned text."""
    spec = policy.schemas[case["schema"]]
    context = ValidationContext(json_schema=spec.schema_, rules=spec.rules, input_text=prompt(case))
    schema, semantic = run_validators(["schema", "semantic"], answer["text"], context)
    try:
        value = json.loads(answer["text"])
    except json.JSONDecodeError:
        value = None
    broken = schema.passed and not semantic.passed
    return {
        "valid_schema": schema.passed,
        "semantic_ok": schema.passed and semantic.passed,
        "broken_rule": semantic.detail.split(":")[0] if broken else None,
        "fields": field_scores(case["schema"], value, case["expected"]),
    }


def _record(
    policy: Policy, case: dict[str, Any], tier: str, mode: str, in_flight: int, answer: Any
) -> dict[str, Any]:
    return {
        "case": case["id"],
        "schema": case["schema"],
        "tier": tier,
        "mode": mode,
        "in_flight": in_flight,
        **answer,
        **judge(policy, case, answer),
    }


def run_tiers(
    url: str,
    tiers: list[str],
    cases: list[dict[str, Any]],
    policy: Policy,
    rows_path: Path,
    done: set[tuple[str, str, str]],
    in_flight: int = 1,
) -> None:
    """Appends one row per answer to ``rows_path`` as it arrives: a long run can resume.

    One tier at a time, with up to ``in_flight`` requests outstanding on it (both modes mixed,
    vLLM batches them): a request starts as soon as another finishes, so no batch waits for its
    slowest member. The latency recorded is the latency under that load.
    """
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=900, max_retries=0)
    lock = threading.Lock()
    for tier in tiers:
        # Alternate which mode goes first per case, so neither always runs on a warmer engine.
        todo = [
            (case, mode)
            for index, case in enumerate(cases)
            for mode in (MODES if index % 2 == 0 else MODES[::-1])
            if (case["id"], tier, mode) not in done
        ]

        def one(job: tuple[dict[str, Any], str], tier: str = tier) -> None:
            case, mode = job
            answer = ask(client, tier, case, mode)
            row = _record(policy, case, tier, mode, in_flight, answer)
            with lock, rows_path.open("a") as out:
                out.write(json.dumps(row) + "\n")
            print(
                f"{tier:6} {case['id']} {mode:13} valid={row['valid_schema']} "
                f"{answer['latency_s']:.1f}s",
                file=sys.stderr,
                flush=True,
            )

        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(one, todo))


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for schema in (row["schema"], "all"):
            groups[(row["tier"], row["mode"], schema)].append(row)
    table = []
    for (tier, mode, schema), group in sorted(groups.items()):
        fields = [ok for row in group for ok in row["fields"].values()]
        latencies = [row["latency_s"] for row in group]
        tokens = [row["completion_tokens"] for row in group]
        table.append(
            {
                "tier": tier,
                "mode": mode,
                "schema": schema,
                "n": len(group),
                "valid_schema_rate": round(sum(r["valid_schema"] for r in group) / len(group), 3),
                "semantic_pass_rate": round(sum(r["semantic_ok"] for r in group) / len(group), 3),
                "field_accuracy": round(sum(fields) / len(fields), 3),
                "truncated": sum(r["finish_reason"] == "length" for r in group),
                "latency_p50_s": round(statistics.median(latencies), 2),
                "latency_p95_s": round(
                    statistics.quantiles(latencies, n=20)[-1]
                    if len(latencies) > 1
                    else latencies[0],
                    2,
                ),
                "completion_tokens_mean": round(statistics.mean(tokens), 1),
                "ms_per_output_token": round(1000 * sum(latencies) / max(1, sum(tokens)), 1),
            }
        )
    return table


def compile_cost(url: str, tiers: list[str]) -> list[dict[str, Any]]:
    """First vs second request with a schema no engine has seen (the invoice shape, renamed)."""
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=900, max_retries=0)
    base = json.loads((HERE.parent / "serve_configs/policies/schemas/invoice.json").read_text())
    out = []
    for tier in tiers:
        schema = json.loads(json.dumps(base))
        fresh = f"note_{uuid.uuid4().hex[:8]}"  # a new property: a new regex, a cold cache
        schema["properties"][fresh] = {"type": "string", "maxLength": 8}
        timings = []
        for _ in range(2):
            started = time.monotonic()
            client.chat.completions.create(
                model=pinned_model("tierserve", tier),
                messages=[{"role": "user", "content": "Invoice INV-1 from Acme, 1 x pen at $2."}],
                temperature=0,
                max_tokens=8,  # the grammar is compiled before the first token either way
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "adhoc", "schema": schema},
                },
            )
            timings.append(time.monotonic() - started)
        out.append(
            {
                "tier": tier,
                "first_request_s": round(timings[0], 2),
                "cached_request_s": round(timings[1], 2),
                "compile_s": round(timings[0] - timings[1], 2),
            }
        )
        print(f"compile {tier}: {out[-1]}", file=sys.stderr, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local-cpu.yaml"))
    parser.add_argument("--tiers", default="small,medium,large")
    parser.add_argument("--limit", type=int, default=0, help="first N cases only (0: all)")
    parser.add_argument("--out", type=Path, default=HERE / "results/extraction.json")
    parser.add_argument("--rows", type=Path, default=HERE / "results/extraction_rows.jsonl")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="tiers measured at once; on a 2-core host several engines thrash each other",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=1,
        help="requests outstanding on the tier being measured (vLLM batches them)",
    )
    parser.add_argument(
        "--summarize-only", action="store_true", help="summarize the rows file, send nothing"
    )
    parser.add_argument("--compile-only", action="store_true", help="only the compile probe")
    parser.add_argument("--skip-compile", action="store_true", help="no compile-cost probe")
    args = parser.parse_args()
    config = load_config(args.config)
    policy = policy_for_host(config, detect_host())  # the version the stack serves here
    lines = (HERE / "extraction/cases.jsonl").read_text().splitlines()
    cases = [json.loads(line) for line in lines]
    # Interleave the schemas, so that a partial (resumed) run covers both evenly.
    cases.sort(key=lambda case: (case["id"].split("-")[1], case["schema"]))
    cases = cases[: args.limit] if args.limit else cases
    tiers = args.tiers.split(",")
    if args.compile_only:
        probe = {
            "measured": time.strftime("%Y-%m-%d"),
            "compile_cost": compile_cost(args.url, tiers),
        }
        (HERE / "results/extraction_compile.json").write_text(json.dumps(probe, indent=1) + "\n")
        return
    args.rows.parent.mkdir(parents=True, exist_ok=True)
    previous = (
        [json.loads(x) for x in args.rows.read_text().splitlines()] if args.rows.exists() else []
    )
    done = {(r["case"], r["tier"], r["mode"]) for r in previous}
    started = time.monotonic()
    groups = [[t] for t in tiers] if args.concurrency > 1 else [tiers]
    if not args.summarize_only:
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(
                pool.map(
                    lambda g: run_tiers(
                        args.url, g, cases, policy, args.rows, done, args.in_flight
                    ),
                    groups,
                )
            )
    rows = [json.loads(line) for line in args.rows.read_text().splitlines()]
    complete = {r["case"] for r in rows if sum(x["case"] == r["case"] for x in rows) == 6}
    result = {
        "cases_complete": len(complete),
        "cases_planned": len(cases),
        "tiers": tiers,
        "max_tokens": MAX_TOKENS,
        "wall_s_this_run": round(time.monotonic() - started, 1),
        "summary": summarize(rows),
        "compile_cost": []
        if args.skip_compile or args.summarize_only
        else compile_cost(args.url, tiers),
        "rows_file": str(args.rows.relative_to(HERE.parent)),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for line in result["summary"]:
        if line["schema"] == "all":
            print(json.dumps({k: v for k, v in line.items() if k != "schema"}))


if __name__ == "__main__":
    main()
