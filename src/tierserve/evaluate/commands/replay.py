"""``tierserve eval replay``: the decision log under a candidate policy, optionally asking the
live tiers for the steps the log lacks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.commands.policy_args import add_policy_arguments, read_policy
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.replay import ReplayReport
from tierserve.evaluate.tasks import TASK_SETS
from tierserve.policy.spec import Policy
from tierserve.policy.versions import WrittenVersion

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    replayed = actions.add_parser("replay", help="the decision log under a candidate policy")
    replayed.add_argument("log_export", type=Path, help="JSONL from `tierserve log export`")
    add_policy_arguments(replayed, help="the candidate policy")
    replayed.add_argument(
        "--outcomes", type=Path, help="outcome JSONL whose per-tier quality rates to expect"
    )
    replayed.add_argument("--out", type=Path)
    replayed.add_argument(
        "--regenerate",
        action="store_true",
        help="ask the live tiers (--url) for the steps the candidate needs and the record lacks",
    )
    replayed.add_argument("--url", default="http://127.0.0.1:8000")
    replayed.add_argument(
        "--store",
        type=Path,
        help="regenerated answers, appended as they come (resumed); default: beside --out",
    )
    replayed.add_argument("--concurrency", type=int, default=4)
    replayed.add_argument("--max-tokens", type=int, default=256)
    replayed.add_argument(
        "--accept-redacted",
        action="store_true",
        help="replay prompts logged with personal data redacted, as redacted",
    )
    replayed.add_argument(
        "--labels",
        choices=sorted(TASK_SETS),
        help="a task set whose answers check both policies' answers to its prompts",
    )
    replayed.add_argument(
        "--outcomes-out",
        type=Path,
        help="with --labels: ask every tier, and write the labelled requests as outcome rows "
        "(for `tierserve eval calibrate`)",
    )
    replayed.add_argument(
        "--write-version",
        type=Path,
        help="write the candidate as a new policy version here, the replay in its header",
    )
    replayed.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.replay import replay
    from tierserve.observe.decision_record import DecisionRecord

    if not args.log_export.is_file():
        raise ConfigError(f"{args.log_export}: no such file", hint="tierserve log export --out")
    records = [
        DecisionRecord.stored(line)
        for line in args.log_export.read_text().splitlines()
        if line.strip()
    ]
    quality = None
    if args.outcomes is not None:
        outcomes = OutcomeSet.read(args.outcomes)
        quality = {tier: outcomes.quality(tier) for tier in outcomes.tiers}
    policy = read_policy(args)
    from tierserve.prompt_models.embedder import embedder_for

    embedder = embedder_for(policy)
    if not args.regenerate:
        if args.outcomes_out or args.labels:
            raise ConfigError("--labels and --outcomes-out need --regenerate")
        report = replay(policy, records, quality, embedder=embedder)
    else:
        report = _regenerated(args, policy, records, quality, embedder)
    if args.write_version is not None:
        report = report.model_copy(
            update={"policy_written": _replayed_version(args, policy, report)}
        )
    print(report.model_dump_json(indent=1, exclude={"changed", "requests"}))
    write_report(args.out, report)
    return 0


def _regenerated(
    args: argparse.Namespace,
    policy: Any,
    records: list[Any],
    quality: dict[str, float] | None,
    embedder: Any,
) -> ReplayReport:
    from tierserve.evaluate.regenerate import regenerated_replay
    from tierserve.evaluate.replay import OutcomesWritten, RegeneratedAnswers, replay
    from tierserve.evaluate.tasks import load_task_set

    if args.outcomes_out and not args.labels:
        raise ConfigError("--outcomes-out needs --labels", hint="name the task set, e.g. general")
    store = args.store or (args.out or args.log_export).with_suffix(".regenerated.jsonl")
    found = regenerated_replay(
        policy,
        records,
        args.url,
        store,
        every_tier=args.outcomes_out is not None,
        accept_redacted=args.accept_redacted,
        max_tokens=args.max_tokens,
        concurrency=args.concurrency,
        embedder=embedder,
    )
    report = replay(policy, records, quality, found.steps(), embedder)
    update: dict[str, Any] = {
        "regenerated": RegeneratedAnswers(
            answers=len(found.answers), store=str(store), not_replayable=found.not_replayable
        )
    }
    if args.labels:
        labels = {item.prompt: item for item in load_task_set(args.labels)}
        prompts = {r.request_id: r.prompt for r in records}
        update["scores"] = found.scores(report.requests, prompts, labels)
        if args.outcomes_out:
            rows = found.outcome_rows(records, policy.tiers, labels)
            OutcomeSet.of(rows, policy.tiers).write(args.outcomes_out)
            update["outcomes_written"] = OutcomesWritten(
                path=str(args.outcomes_out), rows=len(rows)
            )
    return report.model_copy(update=update)


def _replayed_version(
    args: argparse.Namespace, policy: Policy, report: ReplayReport
) -> WrittenVersion:
    from tierserve.policy.versions import write_version

    scores = report.scores
    provenance = (
        f"Written by `tierserve eval replay` from {args.log_export} ({report.replayed} "
        f"requests replayed, {report.unknown} unknown).\nCost {report.cost_before:.6g} -> "
        f"{report.cost_after:.6g}; quality {scores and scores.quality_before} -> "
        f"{scores and scores.quality_after} over {scores.labelled_requests if scores else 0} "
        "labelled."
    )
    return write_version(
        policy, source=args.policy, out=args.write_version, provenance=provenance, suffix="replayed"
    )
