"""``tierserve eval import``: published router outcome data (RouteLLM, RouterBench, judged
MT-Bench) as outcome JSONL."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    imported = actions.add_parser("import", help="published outcome data -> outcome JSONL")
    imported.add_argument(
        "format",
        choices=["routellm", "routerbench", "judged"],
        help="routellm: RouteLLM's responses CSV; routerbench: RouterBench's table; judged: "
        "RouteLLM's judged outcomes (MT-Bench judgements.jsonl)",
    )
    imported.add_argument("path", type=Path)
    imported.add_argument("--out", type=Path, required=True)
    imported.add_argument("--tiers", help="the models that are the tiers, cheapest first: A,B,C")
    imported.add_argument("--weak", help="the cheap model of a two-tier set (with --strong)")
    imported.add_argument("--strong", help="the top model of a two-tier set (with --weak)")
    imported.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="MODEL=USD",
        help="USD per million tokens of a model, for files without costs (repeatable)",
    )
    imported.add_argument(
        "--drop-unscored",
        action="store_true",
        help="leave out rows with a blank, NaN or unreadable score (counted) instead of failing",
    )
    imported.add_argument(
        "--questions", type=Path, help="judged: MT-Bench's question.jsonl (question texts)"
    )
    imported.add_argument("--test-fraction", type=float, default=0.5)
    imported.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.importers import TierChoice, read_routellm_csv, read_routerbench
    from tierserve.evaluate.judged import read_judged

    if not 0.0 < args.test_fraction < 1.0:
        raise ConfigError(
            f"--test-fraction {args.test_fraction} leaves a split empty",
            hint="give a share between 0 and 1, e.g. 0.5",
        )
    tiers = tuple(t.strip() for t in (args.tiers or "").split(",") if t.strip())
    choice = TierChoice(tiers=tiers, weak=args.weak, strong=args.strong)
    common = {"choice": choice, "test_fraction": args.test_fraction}
    drop = args.drop_unscored
    if args.format == "routellm":
        imported = read_routellm_csv(
            args.path, prices=_prices(args.price), drop_unscored=drop, **common
        )
    elif args.format == "routerbench":
        imported = read_routerbench(args.path, drop_unscored=drop, **common)
    else:
        imported = read_judged(
            args.path,
            questions=args.questions,
            prices=_prices(args.price),
            drop_unscored=drop,
            **common,
        )
    imported.outcomes.write(args.out)
    print(f"{imported.summary()} -> {args.out}")
    for note in imported.notes:
        print(f"  {note}")
    return 0


def _prices(pairs: list[str]) -> dict[str, float] | None:
    if not pairs:
        return None
    prices = {}
    for pair in pairs:
        model, _, value = pair.rpartition("=")
        try:
            prices[model] = float(value)
        except ValueError:
            model = ""
        if not model or prices[model] < 0:
            raise ConfigError(
                f"--price {pair!r} is not MODEL=USD", hint="e.g. --price 'gpt-4-1106-preview=24.7'"
            )
    return prices
