"""``tierserve eval collect``: every tier of a running stack over a task set, as outcome JSONL."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.evaluate.tasks import TASK_SETS

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    collect = actions.add_parser("collect", help="run every tier of a stack over a task set")
    collect.add_argument("task_set", choices=sorted(TASK_SETS))
    collect.add_argument("--out", type=Path, required=True, help="outcome JSONL (resumed)")
    collect.add_argument("--url", default="http://127.0.0.1:8000")
    collect.add_argument("--limit", type=int, default=0, help="first N items (0: all)")
    collect.add_argument("--max-tokens", type=int, default=256)
    collect.add_argument(
        "--concurrency", type=int, default=4, help="items asked at once (engines batch them)"
    )
    collect.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.collect import collect
    from tierserve.evaluate.tasks import load_task_set

    items = load_task_set(args.task_set)
    items = items[: args.limit] if args.limit else items
    added = collect(
        args.url,
        items,
        args.out,
        source=args.task_set,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
    )
    print(f"{added} rows added to {args.out}")
    return 0
