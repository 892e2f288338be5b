"""``tierserve eval sources``: cascade thresholds chosen leaving one source of questions out at
a time (see :mod:`tierserve.evaluate.source_folds`): one outcome file per source."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierserve.errors import ConfigError
from tierserve.evaluate.commands.policy_args import add_encoder_argument, read_encoder
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.outcomes import OutcomeSet

if TYPE_CHECKING:
    from tierserve.evaluate.calibrate import Objective

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    sources = actions.add_parser(
        "sources", help="thresholds that hold on a source of questions calibration never saw"
    )
    sources.add_argument(
        "outcomes", type=Path, nargs="+", help="one outcome JSONL per source (named by its stem)"
    )
    sources.add_argument("--signal", default="conf_q10")
    sources.add_argument(
        "--objective", default="quality_share=0.95", help="quality_share=S or max_cost=C"
    )
    sources.add_argument("--grid", type=int, default=21, help="thresholds per tier")
    sources.add_argument(
        "--by-kind",
        action="store_true",
        help="a ladder per question kind (eval calibrate --by-kind) instead of one cascade; "
        "every source must label its rows' kinds",
    )
    sources.add_argument(
        "--kind-min-rows", type=int, default=30, help="--by-kind: train rows a kind's ladder needs"
    )
    sources.add_argument("--out", type=Path, help="JSON report")
    add_encoder_argument(sources)
    sources.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.calibrate import Objective
    from tierserve.evaluate.source_folds import (
        LeftOut,
        SourcesReport,
        choose_by_worst_source,
        leave_one_source_out,
    )

    objective = Objective.parse(args.objective)
    sources = {path.stem: OutcomeSet.read(path) for path in args.outcomes}
    if len(sources) != len(args.outcomes):
        raise ConfigError("two outcome files share a name", hint="rename one: its stem names it")
    if args.by_kind:
        return _by_kind(args, sources, objective)
    folds = leave_one_source_out(sources, args.signal, objective, args.grid)
    report = SourcesReport(
        signal=args.signal,
        objective=objective.describe() + ", on every source it is chosen on",
        sources={name: len(s.rows) for name, s in sources.items()},
        leave_one_source_out=folds,
        left_out_summary={
            fold.source: LeftOut(
                quality_vs_top_alone=fold.left_out.quality_vs_top_alone,
                cost_vs_top_alone=fold.left_out.cost_vs_top_alone,
            )
            for fold in folds
        },
        chosen_on_all_sources=choose_by_worst_source(sources, args.signal, objective, args.grid),
    )
    print(report.model_dump_json(indent=1, exclude={"leave_one_source_out"}))
    write_report(args.out, report)
    return 0


def _by_kind(args: argparse.Namespace, sources: dict[str, OutcomeSet], objective: Objective) -> int:
    from tierserve.evaluate.source_folds import LeftOut
    from tierserve.evaluate.source_kind_folds import (
        KindSourceFold,
        KindSourcesReport,
        leave_one_source_out_by_kind,
    )

    folds = leave_one_source_out_by_kind(
        sources,
        args.signal,
        objective,
        read_encoder(args),
        grid_steps=args.grid,
        min_rows=args.kind_min_rows,
    )

    def left_out(fold: KindSourceFold) -> LeftOut:
        held = sources[fold.source]
        top = held.quality(held.tiers[-1])
        return LeftOut(
            quality_vs_top_alone=fold.left_out.quality / top if top else None,
            cost_vs_top_alone=fold.left_out.cost_vs_top_only,
        )

    every = OutcomeSet.of([row for s in sources.values() for row in s.rows])
    report = KindSourcesReport(
        signal=args.signal,
        objective=objective.describe(),
        sources={name: len(s.rows) for name, s in sources.items()},
        calibrated_on=every.models(),
        leave_one_source_out=folds,
        left_out_summary={fold.source: left_out(fold) for fold in folds},
    )
    print(report.model_dump_json(indent=1, exclude={"leave_one_source_out"}))
    write_report(args.out, report)
    return 0
