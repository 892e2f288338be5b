"""``tierserve eval fields``: field thresholds of an extraction route from labelled extractions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.commands.policy_args import add_policy_arguments, read_policy
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.field_figures import AsInPolicy, FieldsReport

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    fields = actions.add_parser(
        "fields", help="field thresholds of an extraction route from labelled extractions"
    )
    fields.add_argument("rows", type=Path, help="field-outcome JSONL (the extraction bench's)")
    add_policy_arguments(fields, help="policy holding the route")
    fields.add_argument("--route", default="extraction")
    fields.add_argument(
        "--max-silent-wrong",
        type=float,
        default=0.05,
        help="largest share of answers with a wrong field returned without a flag (train)",
    )
    fields.add_argument(
        "--prefer",
        choices=["safest", "cheapest"],
        default="safest",
        help="among settings meeting the objective: the fewest silently wrong answers below "
        "the strongest tier's cost (safest), or the least cost",
    )
    fields.add_argument(
        "--by",
        choices=["kind", "name"],
        default="kind",
        help="kind: one gate per kind of value on every step, chosen and reported leaving one "
        "schema family out at a time (the headline); name: per-step thresholds and per-field "
        "review thresholds on the train split (fits the families it saw)",
    )
    fields.add_argument(
        "--max-flagged",
        type=float,
        default=0.35,
        help="--by kind: largest share of a family's answers flagged (marked, reviewed or "
        "failed safely) a setting may reach",
    )
    fields.add_argument("--out-policy", type=Path, help="write the thresholds as a new version")
    fields.add_argument("--out", type=Path, help="JSON report")
    fields.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.calibrate import retuned
    from tierserve.evaluate.fields import (
        figures,
        read_field_cases,
        tier_alone,
        tune,
        with_agreement,
        with_review_thresholds,
        with_thresholds,
    )
    from tierserve.policy.compose import CALLER_SCHEMA_CHECKS, held_to_schema
    from tierserve.policy.ladder import Ladder
    from tierserve.policy.versions import route_named, write_version

    if not 0.0 <= args.max_silent_wrong <= 1.0:
        raise ConfigError(
            f"--max-silent-wrong {args.max_silent_wrong} is not a share",
            hint="give a number from 0 to 1, e.g. 0.05",
        )
    policy = read_policy(args)
    route = route_named(policy, args.route)
    # The route as a caller's schema climbs it (the format checks on every step).
    ladder = Ladder(
        steps=held_to_schema(route.ladder, route.schema_name is not None, CALLER_SCHEMA_CHECKS),
        on_exhausted=route.on_exhausted,
        review_accepted=route.review_required,
    )
    cases = read_field_cases(args.rows)
    if args.by == "kind":
        from tierserve.evaluate.commands.field_families import by_kind

        return by_kind(args, policy, route, ladder, cases)
    train = [c for c in cases if c.split == "train"]
    test = [c for c in cases if c.split == "test"]
    target = args.max_silent_wrong
    ladder_as_written = with_thresholds(
        ladder, [s.min_field_confidence or 0.0 for s in ladder.steps if s.tier]
    )
    prefer = args.prefer
    field_gates = tune(ladder, train, test, max_silent_wrong=target, prefer=prefer)
    if field_gates.thresholds is None or field_gates.test is None:
        raise ConfigError(str(field_gates.note), hint="raise --max-silent-wrong")
    tiers = [str(s.tier) for s in ladder.steps if s.tier is not None]
    objective = (
        f"silent_wrong <= {target} and all_fields_right >= {tiers[-1]} alone; "
        + (
            f"the fewest silent wrong below {tiers[-1]}'s cost"
            if prefer == "safest"
            else "cheapest"
        )
        + " (train split)"
    )
    report = FieldsReport(
        rows=str(args.rows),
        policy=policy.version,
        route=route.name,
        cases={"train": len(train), "test": len(test)},
        objective=objective,
        field_gates=field_gates,
        field_gates_with_agreement=tune(
            with_agreement(ladder), train, test, max_silent_wrong=target, prefer=prefer
        ),
        whole_answer_gates=tune(
            ladder, train, test, max_silent_wrong=target, gate="min_confidence", prefer=prefer
        ),
        as_in_policy=AsInPolicy(
            thresholds={str(s.tier): s.min_field_confidence or 0.0 for s in ladder.steps if s.tier},
            train=figures(ladder_as_written, train),
            test=figures(ladder_as_written, test),
        ),
        test_untuned={
            "ungated_ladder": figures(with_thresholds(ladder, [0.0] * len(tiers)), test),
            **{f"{tier}_only": figures(tier_alone(ladder, tier), test) for tier in tiers},
        },
    )
    if args.out_policy is not None:
        test_figures = field_gates.test
        provenance = (
            f"Written by `tierserve eval fields` from {args.rows} ({len(train)} train cases), "
            f"route {route.name}.\nObjective: {objective}. Test split: all fields "
            f"right {test_figures.all_fields_right:.3f}, silent wrong "
            f"{test_figures.silent_wrong:.3f}, cost per case "
            f"{test_figures.cost_per_case:.3g}; review thresholds {field_gates.review}."
        )
        retuned_policy = retuned(
            policy, route.name, field_gates.thresholds, key="min_field_confidence"
        )
        written = write_version(
            with_review_thresholds(retuned_policy, route.name, field_gates.review or {}),
            source=args.policy,
            out=args.out_policy,
            provenance=provenance,
            suffix="calibrated",
        )
        report = report.model_copy(update={"policy_written": written})
    print(report.model_dump_json(indent=1))
    write_report(args.out, report)
    return 0
