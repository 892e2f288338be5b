"""``tierserve bench``: the serving benchmark's command line."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError

__all__ = ["add_parser"]

ROOT = Path(__file__).resolve().parents[3]


def _numbers(text: str, kind: type[int] | type[float]) -> list[Any]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"cannot read {text!r} as a comma-separated list of numbers", hint="e.g. 1,2,4,8,16"
        ) from None
    if not values or min(values) <= 0:
        raise ConfigError(f"{text!r}: give positive numbers", hint="e.g. 1,2,4,8,16")
    return values


def _bench(args: argparse.Namespace) -> int:
    from tierserve.bench.load import LoadSettings
    from tierserve.bench.report import failed_requests, markdown_tables
    from tierserve.bench.run import BenchOptions, run_benchmark

    settings = LoadSettings(
        input_len=args.input_len,
        output_len=args.output_len,
        min_prompts=args.min_prompts,
        slo_ttft_ms=args.slo_ttft_ms,
        slo_tpot_ms=args.slo_tpot_ms,
    )
    options = BenchOptions(
        serve_config=Path(args.config),
        out=Path(args.out),
        labelled=Path(args.labelled) if args.labelled else None,
        direct_tier=args.direct_tier,
        concurrencies=_numbers(args.concurrency, int),
        rates=_numbers(args.rate, float) if args.rate else (),
        labelled_concurrency=args.labelled_concurrency,
        planning_callers=_numbers(args.planning_callers, int) if args.planning_callers else (),
        settings=settings,
        command=shlex.join(["tierserve", *sys.argv[1:]]),
    )
    report = run_benchmark(options)
    print(markdown_tables(report))
    print(json.dumps(report["routing_decision_ms"]))
    print(f"wrote {options.out / 'report.json'}, tables.md and serving.png")
    failed = failed_requests(report)
    if failed:  # the numbers above leave these requests out: not a clean run
        print(f"requests failed: {failed}; see {options.out / 'raw' / 'client.log'}")
        return 1
    return 0


def add_parser(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="serving benchmark: direct vLLM vs tierserve (pinned, cascade, large-only) in one run",
    )
    bench.add_argument("config", nargs="?", default="serve_configs/local-cpu.yaml")
    bench.add_argument("--out", default="benchmarks/results/serving_cpu")
    bench.add_argument(
        "--labelled",
        default=str(ROOT / "benchmarks/questions.jsonl"),
        help='JSONL of {"q": question, "a": [accepted answers]} for quality and cost; '
        "'' to measure overhead and throughput only",
    )
    bench.add_argument("--direct-tier", default="small", help="tier compared with direct vLLM")
    bench.add_argument("--concurrency", default="1,2,4,8,16", help="closed-loop sweep")
    bench.add_argument("--rate", default="1", help="open-loop Poisson rates (req/s); '' for none")
    bench.add_argument("--labelled-concurrency", type=int, default=4)
    bench.add_argument(
        "--planning-callers",
        default="1,16,64",
        help="the planning benchmark's callers (POST /v1/route/explain); '' for none",
    )
    bench.add_argument("--input-len", type=int, default=64)
    bench.add_argument("--output-len", type=int, default=32)
    bench.add_argument("--min-prompts", type=int, default=16)
    bench.add_argument("--slo-ttft-ms", type=float, default=2000)
    bench.add_argument("--slo-tpot-ms", type=float, default=250)
    bench.set_defaults(handler=_bench)
