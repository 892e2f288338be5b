"""``tierserve eval sweep``: operating points, APGR, CPT and AIQ per router over outcome data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import signal_grid
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.figures import (
    CascadeRouterReport,
    PromptViewFigures,
    RandomRouter,
    RouterReport,
    SweepReport,
    TrainedRouter,
)
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.routers import (
    EmbeddingDifficultyRouter,
    SufficiencyRouter,
    length_scores,
    random_scores,
)
from tierserve.evaluate.sweep import best_per_call_share, cascade_sweep, report, score_points

__all__ = ["register", "run"]

ROUTERS = ("random", "length", "embedding", "trained", "knn")
RANDOM_SEEDS = 10


def register(actions: Any) -> None:
    sweep = actions.add_parser("sweep", help="operating points, APGR, CPT, AIQ per router")
    sweep.add_argument("outcomes", type=Path)
    sweep.add_argument(
        "--routers",
        default="random,length,embedding,trained",
        help=f"pre-generation routers, comma-separated from {', '.join(ROUTERS)} ('' for none)",
    )
    sweep.add_argument(
        "--signal",
        action="append",
        default=[],
        help="a confidence signal in the outcomes to sweep as a cascade (repeatable)",
    )
    sweep.add_argument(
        "--grid", type=int, default=21, help="thresholds per tier: quantiles of the signal"
    )
    sweep.add_argument("--split", choices=["test", "all"], default="test")
    sweep.add_argument("--out", type=Path)
    sweep.add_argument("--plot", type=Path, help="PNG: quality against strong calls and cost")
    sweep.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    outcomes = OutcomeSet.read(args.outcomes)
    evaluated = outcomes.split("test") if args.split == "test" else outcomes
    names = [n for n in args.routers.split(",") if n]
    reports = _router_reports(outcomes, evaluated, names)
    for signal in args.signal:
        grid = signal_grid(outcomes, signal, args.grid)
        points, frontier, sweep = cascade_sweep(evaluated, signal, grid)
        reports[f"cascade:{signal}"] = CascadeRouterReport(
            **dict(report(evaluated, points, best_per_call_share(points))),
            frontier=frontier,
            threshold_sweep=sweep,
        )
    result = SweepReport(outcomes=str(args.outcomes), split=args.split, routers=reports)
    for name, item in reports.items():
        cpt = ", ".join(f"CPT({k})={_shown(v)}" for k, v in item.cpt.items())
        print(f"{name:18} APGR={_shown(item.apgr)} {cpt} AIQ={_shown(item.aiq)}")
        for reason in item.not_applicable:
            print(f"{'':18} APGR and CPT do not apply: {reason}")
        view = item.prompt_view if isinstance(item, TrainedRouter) else None
        if view and (view.truncated or view.shared_prefix_chars or view.shared_suffix_chars):
            print(
                f"{'':18} embedded the differing part: shared prefix of "
                f"{view.shared_prefix_chars} and suffix of {view.shared_suffix_chars} "
                f"characters cut; {view.truncated} of {view.of} prompts truncated to the "
                "encoder's window (their end kept)"
            )
    write_report(args.out, result)
    if args.plot:
        from tierserve.evaluate.plots import plot_reports

        plot_reports(reports, args.plot, title=args.outcomes.stem)
    return 0


def _mean(values: list[float | None]) -> float | None:
    """None when undefined (no quality gap between the cheapest and top tiers)."""
    return None if None in values else sum(v for v in values if v is not None) / len(values)


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _router_reports(
    outcomes: OutcomeSet, evaluated: OutcomeSet, names: list[str]
) -> dict[str, RouterReport]:
    reports: dict[str, RouterReport] = {}
    for name in names:
        if name == "random":
            # The average over seeds: one random draw is noisy on a few hundred rows.
            draws = [random_scores(len(evaluated.rows), s) for s in range(RANDOM_SEEDS)]
            runs = [report(evaluated, score_points(evaluated, d), scores=d) for d in draws]
            reports[name] = RandomRouter(
                **{
                    **dict(runs[0]),
                    "aiq": _mean([r.aiq for r in runs]),
                    "apgr": _mean([r.apgr for r in runs]),
                    "cpt": {k: _mean([r.cpt[k] for r in runs]) for k in runs[0].cpt},
                },
                seeds=RANDOM_SEEDS,
            )
        elif name == "length":
            scores = length_scores(evaluated)
            reports[name] = report(evaluated, score_points(evaluated, scores), scores=scores)
        elif name in ("embedding", "trained", "knn"):
            train = outcomes.split("train")
            router: EmbeddingDifficultyRouter | SufficiencyRouter
            if name == "embedding":
                router = EmbeddingDifficultyRouter.train(train)
            else:
                router = SufficiencyRouter.train(train, "knn" if name == "knn" else "logistic")
            scores = router.scores([row.prompt for row in evaluated.rows])
            reports[name] = TrainedRouter(
                **dict(report(evaluated, score_points(evaluated, scores), scores=scores)),
                prompt_view=PromptViewFigures.of_view(router.view),
            )
        else:
            raise ConfigError(f"unknown router {name!r}", hint=f"use one of {', '.join(ROUTERS)}")
    return reports
