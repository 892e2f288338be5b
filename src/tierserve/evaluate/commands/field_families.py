"""``tierserve eval fields --by kind``: gates by kind of value, reported leaving one schema
family out at a time (see :mod:`tierserve.evaluate.field_gates`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tierserve.errors import ConfigError
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.field_figures import (
    AgainstTopAlone,
    FamiliesReport,
    FamilyLeftOut,
    FieldFigures,
    KindGatesOnAll,
    LeftOutSummary,
)
from tierserve.evaluate.field_gates import (
    choose_kind_gates,
    gated_by_kind,
    leave_one_family_out,
    with_kind_gates,
)
from tierserve.evaluate.fields import FieldCase, figures, tier_alone
from tierserve.policy.ladder import Ladder
from tierserve.policy.spec import Policy, RouteSpec
from tierserve.policy.versions import with_steps

__all__ = ["by_kind"]


def _against_top(gated: FieldFigures, alone: FieldFigures) -> AgainstTopAlone:
    return AgainstTopAlone(
        **dict(gated),
        top_alone_all_fields_right=alone.all_fields_right,
        cost_vs_top_alone=gated.cost_per_case / alone.cost_per_case
        if alone.cost_per_case
        else None,
    )


def by_kind(
    args: argparse.Namespace,
    policy: Policy,
    route: RouteSpec,
    ladder: Ladder,
    cases: Sequence[FieldCase],
) -> int:
    families = sorted({case.family for case in cases})
    if len(families) < 2 or "" in families:
        raise ConfigError(
            f"{args.rows}: --by kind needs rows of two schema families or more (found {families})",
            hint="give each row its family as `kind` (the extraction bench does), or use --by name",
        )
    top = str([s.tier for s in ladder.steps if s.tier is not None][-1])
    alone = tier_alone(ladder, top)
    alone_by_family = {f: figures(alone, [c for c in cases if c.family == f]) for f in families}
    folds = leave_one_family_out(ladder, cases, max_flagged=args.max_flagged)
    left_out = {
        fold.family: FamilyLeftOut(
            gates=fold.gates,
            in_sample=fold.in_sample,
            left_out=_against_top(fold.left_out, alone_by_family[fold.family]),
        )
        for fold in folds
    }
    shown = [fold.left_out for fold in folds]
    chosen = choose_kind_gates(ladder, cases, max_flagged=args.max_flagged)
    gated = with_kind_gates(ladder, chosen.gates)
    report = FamiliesReport(
        rows=str(args.rows),
        policy=policy.version,
        route=route.name,
        families={f: sum(c.family == f for c in cases) for f in families},
        objective=f"per family flagged <= {args.max_flagged}, then the lowest silent wrong "
        "on the worst family (leave one family out)",
        left_out_summary=LeftOutSummary(
            worst_silent_wrong=max(f.silent_wrong for f in shown),
            mean_silent_wrong=sum(f.silent_wrong for f in shown) / len(shown),
            worst_flagged=max(f.flagged for f in shown),
            all_fields_right_minus_top_alone={
                family: round(
                    item.left_out.all_fields_right - item.left_out.top_alone_all_fields_right, 4
                )
                for family, item in left_out.items()
            },
            worst_cost_vs_top_alone=max(
                item.left_out.cost_vs_top_alone or 0.0 for item in left_out.values()
            ),
        ),
        leave_one_family_out=left_out,
        chosen_on_all_families=KindGatesOnAll(
            **dict(chosen), in_sample=_against_top(figures(gated, cases), figures(alone, cases))
        ),
        top_alone_by_family=alone_by_family,
    )
    if args.out_policy is not None:
        from tierserve.policy.versions import write_version

        summary = report.left_out_summary
        provenance = (
            f"Written by `tierserve eval fields --by kind` from {args.rows} "
            f"({len(cases)} cases, {len(families)} families), route {route.name}.\n"
            "Left one family out at a time: worst silent wrong "
            f"{summary.worst_silent_wrong:.3f}, worst flagged {summary.worst_flagged:.3f}."
        )
        written = write_version(
            with_steps(policy, route.name, gated_by_kind(chosen.gates)),
            source=args.policy,
            out=args.out_policy,
            provenance=provenance,
            suffix="field-gates",
        )
        report = report.model_copy(update={"policy_written": written})
    print(report.model_dump_json(indent=1, exclude={"leave_one_family_out"}))
    write_report(args.out, report)
    return 0
