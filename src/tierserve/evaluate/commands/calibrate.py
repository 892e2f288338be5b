"""``tierserve eval calibrate``: calibrate a confidence signal, choose a route's thresholds
(optionally with a start router, or a ladder per question kind), write a policy version."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import Objective, signal_grid
from tierserve.evaluate.commands.policy_args import add_encoder_argument, read_encoder
from tierserve.evaluate.commands.reports import write_report
from tierserve.evaluate.figures import (
    CalibrationReport,
    CalibrationTest,
    PromptViewFigures,
    QualityCost,
    RouterChoice,
    ThresholdChoice,
)
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.routers import SufficiencyRouter
from tierserve.policy.spec import Policy
from tierserve.policy.start_router import StartRouterSpec
from tierserve.policy.versions import WrittenVersion
from tierserve.signals.confidence import GATE_SIGNALS

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    calibration = actions.add_parser(
        "calibrate", help="calibrate a signal, choose thresholds, write a policy version"
    )
    calibration.add_argument("outcomes", type=Path)
    calibration.add_argument(
        "--test-outcomes",
        type=Path,
        help="report on these rows (another source of questions, which calibration never "
        "sees) instead of the test split of OUTCOMES",
    )
    calibration.add_argument(
        "--signal",
        default="conf_q10",
        help="the signal to choose thresholds on; the policy version written names it, and "
        "the gateway measures it (conf_q0, conf_q10, conf_q25 or conf_q50)",
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
    add_encoder_argument(calibration)
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
    calibration.add_argument(
        "--kind-min-rows",
        type=int,
        default=30,
        help="--by-kind: train rows a kind needs for a ladder of its own; fewer, and its "
        "requests climb the ladder of the route without kinds",
    )
    calibration.add_argument("--policy", type=Path, help="policy file to write a version of")
    calibration.add_argument("--route", default="faq", help="the route whose ladder to retune")
    calibration.add_argument("--out-policy", type=Path)
    calibration.add_argument("--out", type=Path, help="JSON report")
    calibration.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.evaluate.calibrate import (
        Objective,
        calibrate,
        choose_thresholds,
        reliability,
    )
    from tierserve.evaluate.sweep import baselines, cascade_figures, run_cascade

    objective = Objective.parse(args.objective)
    if args.policy is not None and args.signal not in GATE_SIGNALS:
        raise ConfigError(
            f"--signal {args.signal!r}: a policy version's thresholds must be on a signal the "
            f"gateway measures, one of {sorted(GATE_SIGNALS)}",
            hint="pick one of those, or drop --policy to only report on this signal",
        )
    outcomes = OutcomeSet.read(args.outcomes)
    train = outcomes.split("train")
    if args.test_outcomes is None:
        test = outcomes.split("test")
    else:
        test = OutcomeSet.read(args.test_outcomes, train.tiers)
    if args.by_kind:
        return _calibrate_by_kind(args, train, test, objective)
    fitted = calibrate(train, args.signal, args.method)
    grid = signal_grid(train, args.signal)
    router = starts = None
    if args.router == "trained":
        from tierserve.evaluate.calibrate import choose_with_router
        from tierserve.evaluate.routers import SufficiencyRouter, cross_fitted, start_indexes

        encoder = read_encoder(args)
        chosen = choose_with_router(
            train, args.signal, objective, grid, cross_fitted(train, encoder)
        )
        router = SufficiencyRouter.train(train, "logistic", encoder)
        suffices = router.suffices([row.prompt for row in test.rows])
        starts = start_indexes(test.tiers, suffices, chosen.min_probability or 0.0)
    else:
        chosen = choose_thresholds(train, args.signal, objective, grid)
    thresholds = chosen.thresholds
    choices = run_cascade(test, args.signal, list(thresholds.values()), starts)
    calibrated = cascade_figures(test, list(thresholds.values()), choices)
    shares = calibrated.answered_by
    report = CalibrationReport(
        outcomes=str(args.outcomes),
        test_outcomes=_named(args.test_outcomes),
        signal=args.signal,
        method=args.method,
        objective=objective.describe(),
        calibrated_on=train.models(),
        thresholds=thresholds,
        accept_probability={
            tier: float(fitted[tier].probability([t])[0]) if t != float("inf") else None
            for tier, t in thresholds.items()
        },
        reliability_test={tier: reliability(test, c) for tier, c in fitted.items()},
        train=QualityCost(quality=chosen.train_quality, cost=chosen.train_cost),
        test=CalibrationTest(
            calibrated_policy=calibrated,
            baselines=baselines(test),
            random_same_mix=QualityCost(
                quality=sum(shares[t] * test.quality(t) for t in test.tiers),
                cost=sum(shares[t] * test.cost(t) for t in test.tiers),
            ),
        ),
        router=None
        if router is None or starts is None
        else RouterChoice(
            kind="trained (logistic, per-tier sufficiency)",
            min_probability=chosen.min_probability or 0.0,
            started_at_test={t: starts.count(i) / len(starts) for i, t in enumerate(test.tiers)},
            prompt_view=PromptViewFigures.of_view(router.view),
        ),
    )
    if args.policy is not None:
        out_policy = args.out_policy or args.policy.with_name(f"{args.policy.stem}-calibrated.yaml")
        provenance = (
            f"Written by `tierserve eval calibrate` from {args.outcomes} ({len(train.rows)} "
            f"train rows), signal {args.signal}, {args.method} calibration.\n"
            f"Objective: {objective.describe()}. {_tested_on(args)}: quality "
            f"{calibrated.quality:.3f}, cost {calibrated.cost:.6g}."
        )
        from tierserve.evaluate.calibrate import retuned

        policy = retuned(
            _loaded(args, train),
            args.route,
            thresholds,
            start_router=_router_file(router, out_policy, args.route, chosen),
        )
        written = _policy_version(
            args, policy, out_policy, provenance, "calibrated", report.calibrated_on
        )
        report = report.model_copy(update={"policy": written})
    print(report.model_dump_json(indent=1))
    write_report(args.out, report)
    return 0


def _calibrate_by_kind(
    args: argparse.Namespace, train: OutcomeSet, test: OutcomeSet, objective: Objective
) -> int:
    from tierserve.evaluate.kinds import KindClassifier, kind_routes
    from tierserve.evaluate.kinds import report as kinds_report

    if args.router != "none":
        raise ConfigError("--by-kind chooses whole ladders per kind; drop --router")
    classifier = KindClassifier.train(train.rows, read_encoder(args), args.kind_min_probability)
    grid = signal_grid(train, args.signal)
    ladders, report = kinds_report(
        str(args.outcomes),
        train,
        test,
        classifier,
        args.signal,
        objective,
        grid,
        args.kind_min_rows,
    )
    report = report.model_copy(update={"test_outcomes": _named(args.test_outcomes)})
    if args.policy is not None:
        out_policy = args.out_policy or args.policy.with_name(f"{args.policy.stem}-by-kind.yaml")
        kinds_file = out_policy.with_name(f"{out_policy.stem}.{args.route}-kinds.json")
        kinds_file.write_text(classifier.served().weights_json())
        figures = report.test.routed_by_kind
        provenance = (
            f"Written by `tierserve eval calibrate --by-kind` from {args.outcomes} "
            f"({len(train.rows)} train rows), signal {args.signal}.\n"
            f"Objective: {objective.describe()}. {_tested_on(args)}: quality "
            f"{figures.quality:.3f}, cost {figures.cost:.6g} ({figures.cost_vs_top_only:.2f}x "
            "top tier only)."
        )
        policy = kind_routes(
            _loaded(args, train),
            args.route,
            ladders,
            kinds_file,
            args.kind_min_probability,
        )
        written = _policy_version(
            args, policy, out_policy, provenance, "by-kind", report.calibrated_on
        )
        report = report.model_copy(update={"policy": written})
    print(report.model_dump_json(indent=1))
    write_report(args.out, report)
    return 0


def _named(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _tested_on(args: argparse.Namespace) -> str:
    if args.test_outcomes is None:
        return "Test split"
    return f"Left-out source {args.test_outcomes.name}"


def _router_file(
    router: SufficiencyRouter | None, out_policy: Path, route: str, chosen: ThresholdChoice
) -> StartRouterSpec | None:
    """Writes ``router`` beside the policy version; the route's start router, naming it."""
    if router is None:
        return None
    path = out_policy.with_name(f"{out_policy.stem}.{route}-router.json")
    path.write_text(router.served().weights_json())
    return StartRouterSpec.model_validate(
        {"file": path.name, "min_probability": chosen.min_probability},
        context={"base_dir": path.parent},
    )


def _loaded(args: argparse.Namespace, train: OutcomeSet) -> Policy:
    """``args.policy``, on the tiers the outcome rows were collected from."""
    from tierserve.policy.spec import load_policy

    return load_policy(args.policy, train.tiers)


def _policy_version(
    args: argparse.Namespace,
    policy: Policy,
    out_policy: Path,
    provenance: str,
    suffix: str,
    calibrated_on: dict[str, str],
) -> WrittenVersion:
    """Writes ``policy``, its thresholds chosen on ``args.signal`` over answers of the
    ``calibrated_on`` model versions (tiers it names none for keep the source's), as a version
    of ``args.policy``."""
    from tierserve.policy.versions import write_version

    gated = policy.model_copy(
        update={
            "confidence_signal": args.signal,
            "calibrated_on": {**policy.calibrated_on, **calibrated_on},
        }
    )
    return write_version(
        gated, source=args.policy, out=out_policy, provenance=provenance, suffix=suffix
    )
