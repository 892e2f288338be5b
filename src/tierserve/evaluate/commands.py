"""``tierserve eval``: collect or import outcome data, sweep routers over it, calibrate a
policy version, and replay the decision log under a candidate policy.

    tierserve eval import routellm benchmarks/data/routellm/gsm8k_responses.csv --out gsm8k.jsonl
    tierserve eval import judged judgements.jsonl --questions question.jsonl --out mt.jsonl
    tierserve eval collect gsm8k --limit 100 --out benchmarks/results/outcomes_gsm8k.jsonl
    tierserve eval sweep gsm8k.jsonl --routers random,length,embedding,trained --signal conf_q10 \
        --out report.json --plot frontier.png
    tierserve eval calibrate outcomes.jsonl --signal conf_q10 --objective quality_share=0.95 \
        --policy serve_configs/policies/support.yaml --route faq --out calibrate.json
    tierserve eval fields benchmarks/results/extraction_fields_rows.jsonl \
        --policy serve_configs/policies/support.yaml --route extraction --max-silent-wrong 0.05
    tierserve eval replay decisions.jsonl --policy candidate.yaml --outcomes outcomes.jsonl
    tierserve eval replay decisions.jsonl --policy candidate.yaml --regenerate --labels general \
        --outcomes-out replayed.jsonl --write-version candidate-v2.yaml

Cascades (sweep, calibrate) and replay decide through the serving ladder kernel
(:mod:`tierserve.policy.ladder`), so they predict what the gateway does.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import Objective, signal_grid
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.routers import (
    EmbeddingDifficultyRouter,
    SufficiencyRouter,
    length_scores,
    random_scores,
)
from tierserve.evaluate.sweep import best_per_call_share, cascade_sweep, report, score_points

__all__ = ["add_parser"]

ROUTERS = ("random", "length", "embedding", "trained", "knn")
RANDOM_SEEDS = 10


def add_parser(sub: Any) -> None:
    evaluate = sub.add_parser("eval", help="offline router evaluation over outcome data")
    actions = evaluate.add_subparsers(dest="eval_action", required=True)

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
    imported.set_defaults(handler=_import)

    collect = actions.add_parser("collect", help="run every tier of a stack over a task set")
    collect.add_argument("task_set", choices=["gsm8k", "gpqa", "general"])
    collect.add_argument("--out", type=Path, required=True, help="outcome JSONL (resumed)")
    collect.add_argument("--url", default="http://127.0.0.1:8000")
    collect.add_argument("--limit", type=int, default=0, help="first N items (0: all)")
    collect.add_argument("--max-tokens", type=int, default=256)
    collect.add_argument(
        "--concurrency", type=int, default=4, help="items asked at once (engines batch them)"
    )
    collect.set_defaults(handler=_collect)

    calibration = actions.add_parser(
        "calibrate", help="calibrate a signal, choose thresholds, write a policy version"
    )
    calibration.add_argument("outcomes", type=Path)
    calibration.add_argument(
        "--signal",
        default="conf_q10",
        help="the signal the gateway gates on: conf_q<100 x cascade.confidence_quantile>",
    )
    calibration.add_argument("--method", choices=["isotonic", "platt"], default="isotonic")
    calibration.add_argument(
        "--objective", default="quality_share=0.95", help="quality_share=S or max_cost=C"
    )
    calibration.add_argument(
        "--router",
        choices=["none", "trained"],
        default="none",
        help="trained: also fit a start router (the ladder starts at the cheapest tier it "
        "predicts suffices) and its level together with the thresholds",
    )
    calibration.add_argument(
        "--by-kind",
        action="store_true",
        help="a ladder per question kind (rows' labels.kind), chosen together, and the kind "
        "classifier that picks it; the route's kinds become routes of their own",
    )
    calibration.add_argument(
        "--kind-min-probability",
        type=float,
        default=0.5,
        help="--by-kind: below this a request has no kind (the route itself serves it)",
    )
    calibration.add_argument("--policy", type=Path, help="policy file to write a version of")
    calibration.add_argument("--route", default="faq", help="the route whose ladder to retune")
    calibration.add_argument("--out-policy", type=Path)
    calibration.add_argument("--out", type=Path, help="JSON report")
    calibration.set_defaults(handler=_calibrate)

    fields = actions.add_parser(
        "fields", help="field thresholds of an extraction route from labelled extractions"
    )
    fields.add_argument("rows", type=Path, help="field-outcome JSONL (the extraction bench's)")
    fields.add_argument("--policy", type=Path, required=True, help="policy holding the route")
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
    fields.add_argument("--out-policy", type=Path, help="write the thresholds as a new version")
    fields.add_argument("--out", type=Path, help="JSON report")
    fields.set_defaults(handler=_fields)

    replayed = actions.add_parser("replay", help="the decision log under a candidate policy")
    replayed.add_argument("log_export", type=Path, help="JSONL from `tierserve log export`")
    replayed.add_argument("--policy", type=Path, required=True, help="the candidate policy")
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
        choices=["gsm8k", "gpqa", "general"],
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
    replayed.set_defaults(handler=_replay)

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
    sweep.set_defaults(handler=_sweep)


def _calibrate(args: argparse.Namespace) -> int:
    from tierserve.evaluate.calibrate import (
        Objective,
        calibrate,
        choose_thresholds,
        reliability,
    )
    from tierserve.evaluate.sweep import baselines, cascade_point, decision_report, run_cascade

    kind, _, value = args.objective.partition("=")
    if kind not in ("quality_share", "max_cost") or not value:
        raise ConfigError(
            f"cannot read objective {args.objective!r}",
            hint="use quality_share=0.95 or max_cost=0.0001",
        )
    objective = Objective(**{kind: float(value)})
    outcomes = OutcomeSet.read(args.outcomes)
    train, test = outcomes.split("train"), outcomes.split("test")
    if args.by_kind:
        return _calibrate_by_kind(args, train, test, objective)
    fitted = calibrate(train, args.signal, args.method)
    grid = signal_grid(train, args.signal)
    router = starts = None
    if args.router == "trained":
        from tierserve.evaluate.calibrate import choose_with_router
        from tierserve.evaluate.routers import SufficiencyRouter, cross_fitted, start_indexes

        chosen = choose_with_router(train, args.signal, objective, grid, cross_fitted(train))
        router = SufficiencyRouter.train(train, "logistic")
        suffices = router.suffices([row.prompt for row in test.rows])
        starts = start_indexes(test.tiers, suffices, chosen["min_probability"])
    else:
        chosen = choose_thresholds(train, args.signal, objective, grid)
    thresholds = chosen["thresholds"]
    choices = run_cascade(test, args.signal, list(thresholds.values()), starts)
    calibrated = cascade_point(test, list(thresholds.values()), choices)
    shares = {t: sum(c.answered_by == t for c in choices) / len(choices) for t in test.tiers}
    result: dict[str, Any] = {
        "outcomes": str(args.outcomes),
        "signal": args.signal,
        "method": args.method,
        "objective": objective.describe(),
        "thresholds": thresholds,
        "accept_probability": {
            tier: float(fitted[tier].probability([t])[0]) if t != float("inf") else None
            for tier, t in thresholds.items()
        },
        "reliability_test": {tier: reliability(test, c) for tier, c in fitted.items()},
        "train": {"quality": chosen["train_quality"], "cost": chosen["train_cost"]},
        "test": {
            "calibrated_policy": {
                "quality": calibrated.quality,
                "cost": calibrated.cost,
                "answered_by": shares,
                **decision_report(test, choices),
            },
            **baselines(test),
            # Random routing with the same mix of answering tiers as the calibrated policy.
            "random_same_mix": {
                "quality": sum(shares[t] * test.quality(t) for t in test.tiers),
                "cost": sum(shares[t] * test.cost(t) for t in test.tiers),
            },
        },
    }
    if router is not None and starts is not None:
        result["router"] = {
            "kind": "trained (logistic, per-tier sufficiency)",
            "min_probability": chosen["min_probability"],
            "started_at_test": {t: starts.count(i) / len(starts) for i, t in enumerate(test.tiers)},
            "prompt_view": router.view.describe(),
        }
    if args.policy is not None:
        out_policy = args.out_policy or args.policy.with_name(f"{args.policy.stem}-calibrated.yaml")
        provenance = (
            f"Written by `tierserve eval calibrate` from {args.outcomes} ({len(train.rows)} "
            f"train rows), signal {args.signal}, {args.method} calibration.\n"
            f"Objective: {objective.describe()}. Test split: quality "
            f"{result['test']['calibrated_policy']['quality']:.3f}, cost "
            f"{result['test']['calibrated_policy']['cost']:.6g}."
        )
        result["policy"] = _policy_version(
            args,
            out_policy,
            provenance,
            route=args.route,
            thresholds=thresholds,
            start_router=_router_file(router, out_policy, args.route, chosen),
        )
    print(json.dumps(result, indent=1))
    _write_report(args.out, result)
    return 0


def _policy_version(
    args: argparse.Namespace, out_policy: Path, provenance: str, **changes: Any
) -> dict[str, str]:
    """Writes the calibrated version of ``args.policy`` (on ``args.signal``); its path and
    version."""
    from tierserve.evaluate.calibrate import write_policy

    version = write_policy(
        args.policy, out_policy, signal=args.signal, provenance=provenance, **changes
    )
    return {"path": str(out_policy), "version": version}


def _write_report(out: Path | None, result: dict[str, Any]) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")


def _calibrate_by_kind(
    args: argparse.Namespace, train: OutcomeSet, test: OutcomeSet, objective: Objective
) -> int:
    from tierserve.evaluate.kinds import KindClassifier, kind_routes, report
    from tierserve.prompt_models.encoder import sentence_encoder

    if args.router != "none":
        raise ConfigError("--by-kind chooses whole ladders per kind; drop --router")
    classifier = KindClassifier.train(train.rows, sentence_encoder(), args.kind_min_probability)
    grid = signal_grid(train, args.signal)
    ladders, result = report(train, test, classifier, args.signal, objective, grid)
    result["outcomes"] = str(args.outcomes)
    if args.policy is not None:
        out_policy = args.out_policy or args.policy.with_name(f"{args.policy.stem}-by-kind.yaml")
        kinds_file = out_policy.with_name(f"{out_policy.stem}.{args.route}-kinds.json")
        kinds_file.write_text(json.dumps(classifier.served()) + "\n")
        figures = result["test"]["routed_by_kind"]
        provenance = (
            f"Written by `tierserve eval calibrate --by-kind` from {args.outcomes} "
            f"({len(train.rows)} train rows), signal {args.signal}.\n"
            f"Objective: {objective.describe()}. Test split: quality {figures['quality']:.3f}, "
            f"cost {figures['cost']:.6g} ({figures['cost_vs_top_only']:.2f}x top tier only)."
        )
        result["policy"] = _policy_version(
            args,
            out_policy,
            provenance,
            suffix="by-kind",
            edit=kind_routes(args.route, ladders, kinds_file.name, args.kind_min_probability),
        )
    print(json.dumps(result, indent=1))
    _write_report(args.out, result)
    return 0


def _router_file(
    router: SufficiencyRouter | None, out_policy: Path, route: str, chosen: dict[str, Any]
) -> dict[str, Any] | None:
    """Writes ``router`` beside the policy version; the route's ``start_router`` entry."""
    if router is None:
        return None
    path = out_policy.with_name(f"{out_policy.stem}.{route}-router.json")
    path.write_text(json.dumps(router.served()) + "\n")
    return {"file": path.name, "min_probability": chosen["min_probability"]}


def _fields(args: argparse.Namespace) -> int:
    from tierserve.evaluate.calibrate import write_policy
    from tierserve.evaluate.fields import (
        figures,
        read_field_cases,
        review_edit,
        tier_alone,
        tune,
        with_agreement,
        with_thresholds,
    )
    from tierserve.policy.compose import CALLER_SCHEMA_CHECKS, held_to_schema
    from tierserve.policy.ladder import Ladder
    from tierserve.policy.spec import load_policy

    if not 0.0 <= args.max_silent_wrong <= 1.0:
        raise ConfigError(
            f"--max-silent-wrong {args.max_silent_wrong} is not a share",
            hint="give a number from 0 to 1, e.g. 0.05",
        )
    policy = load_policy(args.policy)
    route = next((r for r in policy.routes if r.name == args.route), None)
    if route is None:
        raise ConfigError(
            f"policy {args.policy} has no route {args.route!r}",
            hint=f"use one of {[r.name for r in policy.routes]}",
        )
    # The route as a caller's schema climbs it (the format checks on every step).
    ladder = Ladder(
        steps=held_to_schema(route.ladder, route.schema_name is not None, CALLER_SCHEMA_CHECKS),
        on_exhausted=route.on_exhausted,
        review_accepted=route.review_required,
    )
    cases = read_field_cases(args.rows)
    train = [c for c in cases if c.split == "train"]
    test = [c for c in cases if c.split == "test"]
    target = args.max_silent_wrong
    ladder_as_written = with_thresholds(
        ladder, [s.min_field_confidence or 0.0 for s in ladder.steps if s.tier]
    )
    prefer = args.prefer
    field_gates = tune(ladder, train, test, max_silent_wrong=target, prefer=prefer)
    if field_gates["thresholds"] is None:
        raise ConfigError(str(field_gates["note"]), hint="raise --max-silent-wrong")
    tiers = [str(s.tier) for s in ladder.steps if s.tier is not None]
    result: dict[str, Any] = {
        "rows": str(args.rows),
        "policy": policy.version,
        "route": route.name,
        "cases": {"train": len(train), "test": len(test)},
        "objective": f"silent_wrong <= {target} and all_fields_right >= {tiers[-1]} alone; "
        + (
            f"the fewest silent wrong below {tiers[-1]}'s cost"
            if prefer == "safest"
            else "cheapest"
        )
        + " (train split)",
        "field_gates": field_gates,
        # The same route with a second opinion on each later step, and gated on whole-answer
        # confidence instead, each tuned the same way, for comparison.
        "field_gates_with_agreement": tune(
            with_agreement(ladder), train, test, max_silent_wrong=target, prefer=prefer
        ),
        "whole_answer_gates": tune(
            ladder, train, test, max_silent_wrong=target, gate="min_confidence", prefer=prefer
        ),
        # The route's own field thresholds, as the policy file has them.
        "as_in_policy": {
            "thresholds": {
                str(s.tier): s.min_field_confidence or 0.0 for s in ladder.steps if s.tier
            },
            "train": figures(ladder_as_written, train),
            "test": figures(ladder_as_written, test),
        },
        "test_untuned": {
            "ungated_ladder": figures(with_thresholds(ladder, [0.0] * len(tiers)), test),
            **{f"{tier}_only": figures(tier_alone(ladder, tier), test) for tier in tiers},
        },
    }
    if args.out_policy is not None:
        test_figures = field_gates["test"]
        provenance = (
            f"Written by `tierserve eval fields` from {args.rows} ({len(train)} train cases), "
            f"route {route.name}.\nObjective: {result['objective']}. Test split: all fields "
            f"right {test_figures['all_fields_right']:.3f}, silent wrong "
            f"{test_figures['silent_wrong']:.3f}, cost per case "
            f"{test_figures['cost_per_case']:.3g}; review thresholds {field_gates['review']}."
        )
        result["policy_written"] = {
            "path": str(args.out_policy),
            "version": write_policy(
                args.policy,
                args.out_policy,
                route=route.name,
                thresholds=field_gates["thresholds"],
                signal=None,
                provenance=provenance,
                key="min_field_confidence",
                edit=review_edit(route.name, field_gates["review"]),
            ),
        }
    shown = json.dumps(_skips_named(result), indent=1)
    print(shown)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(shown + "\n")
    return 0


def _skips_named(value: Any) -> Any:
    """A skipped step's threshold (infinite) as "skip": JSON has no infinity."""
    if isinstance(value, dict):
        return {k: _skips_named(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_skips_named(v) for v in value]
    if isinstance(value, float) and value == float("inf"):
        return "skip"
    return value


def _replay(args: argparse.Namespace) -> int:
    from tierserve.evaluate.replay import replay
    from tierserve.observe.decision_record import DecisionRecord
    from tierserve.policy.spec import load_policy

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
    policy = load_policy(args.policy)
    from tierserve.prompt_models.encoder import embedder_for

    embedder = embedder_for(policy)
    if not args.regenerate:
        if args.outcomes_out or args.labels:
            raise ConfigError("--labels and --outcomes-out need --regenerate")
        result = replay(policy, records, quality, embedder=embedder)
    else:
        result = _regenerated(args, policy, records, quality, embedder)
    if args.write_version is not None:
        result["policy_written"] = _replayed_version(args, result)
    hidden = ("changed", "requests")
    print(json.dumps({k: v for k, v in result.items() if k not in hidden}, indent=1))
    _write_report(args.out, result)
    return 0


def _regenerated(
    args: argparse.Namespace,
    policy: Any,
    records: list[Any],
    quality: dict[str, float] | None,
    embedder: Any,
) -> dict[str, Any]:
    from tierserve.evaluate.regenerate import regenerated_replay
    from tierserve.evaluate.replay import replay
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
    result = replay(policy, records, quality, found.steps(), embedder)
    result["regenerated"] = {
        "answers": len(found.answers),
        "store": str(store),
        "not_replayable": found.not_replayable,
    }
    if args.labels:
        labels = {item.prompt: item for item in load_task_set(args.labels)}
        prompts = {r.request_id: r.prompt for r in records}
        result["scores"] = found.scores(result["requests"], prompts, labels)
        if args.outcomes_out:
            rows = found.outcome_rows(records, policy.tiers, labels)
            OutcomeSet.of(rows, policy.tiers).write(args.outcomes_out)
            result["outcomes_written"] = {"path": str(args.outcomes_out), "rows": len(rows)}
    return result


def _replayed_version(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, str]:
    from tierserve.evaluate.calibrate import write_policy

    scores = result.get("scores", {})
    provenance = (
        f"Written by `tierserve eval replay` from {args.log_export} ({result['replayed']} "
        f"requests replayed, {result['unknown']} unknown).\nCost {result['cost_before']:.6g} -> "
        f"{result['cost_after']:.6g}; quality {scores.get('quality_before')} -> "
        f"{scores.get('quality_after')} over {scores.get('labelled_requests', 0)} labelled."
    )
    version = write_policy(
        args.policy, args.write_version, provenance=provenance, suffix="replayed"
    )
    return {"path": str(args.write_version), "version": version}


def _collect(args: argparse.Namespace) -> int:
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


def _import(args: argparse.Namespace) -> int:
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


def _mean(values: list[float | None]) -> float | None:
    """None when undefined (no quality gap between the cheapest and top tiers)."""
    return None if None in values else sum(v for v in values if v is not None) / len(values)


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _router_reports(
    outcomes: OutcomeSet, evaluated: OutcomeSet, names: list[str]
) -> dict[str, Any]:
    reports: dict[str, Any] = {}
    for name in names:
        if name == "random":
            # The average over seeds: one random draw is noisy on a few hundred rows.
            draws = [random_scores(len(evaluated.rows), s) for s in range(RANDOM_SEEDS)]
            runs = [report(evaluated, score_points(evaluated, d), scores=d) for d in draws]
            merged = dict(runs[0])
            merged["aiq"] = _mean([r["aiq"] for r in runs])
            merged["apgr"] = _mean([r["apgr"] for r in runs])
            merged["cpt"] = {k: _mean([r["cpt"][k] for r in runs]) for k in runs[0]["cpt"]}
            merged["seeds"] = RANDOM_SEEDS
            reports[name] = merged
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
            reports[name] = {
                **report(evaluated, score_points(evaluated, scores), scores=scores),
                "prompt_view": router.view.describe(),
            }
        else:
            raise ConfigError(f"unknown router {name!r}", hint=f"use one of {', '.join(ROUTERS)}")
    return reports


def _sweep(args: argparse.Namespace) -> int:
    outcomes = OutcomeSet.read(args.outcomes)
    evaluated = outcomes.split("test") if args.split == "test" else outcomes
    names = [n for n in args.routers.split(",") if n]
    reports = _router_reports(outcomes, evaluated, names)
    for signal in args.signal:
        grid = signal_grid(outcomes, signal, args.grid)
        points, frontier, sweep = cascade_sweep(evaluated, signal, grid)
        reports[f"cascade:{signal}"] = {
            **report(evaluated, points, best_per_call_share(points)),
            "frontier": frontier,
            "threshold_sweep": sweep,
        }
    result = {"outcomes": str(args.outcomes), "split": args.split, "routers": reports}
    for name, item in reports.items():
        cpt = ", ".join(f"CPT({k})={_shown(v)}" for k, v in item["cpt"].items())
        print(f"{name:18} APGR={_shown(item['apgr'])} {cpt} AIQ={item['aiq']:.3f}")
        for reason in item["not_applicable"]:
            print(f"{'':18} APGR and CPT do not apply: {reason}")
        view = item.get("prompt_view")
        if view and (
            view["truncated"] or view["shared_prefix_chars"] or view["shared_suffix_chars"]
        ):
            print(
                f"{'':18} embedded the differing part: shared prefix of "
                f"{view['shared_prefix_chars']} and suffix of {view['shared_suffix_chars']} "
                f"characters cut; {view['truncated']} of {view['of']} prompts truncated to the "
                "encoder's window (their end kept)"
            )
    _write_report(args.out, result)
    if args.plot:
        from tierserve.evaluate.plots import plot_reports

        plot_reports(reports, args.plot, title=args.outcomes.stem)
    return 0
