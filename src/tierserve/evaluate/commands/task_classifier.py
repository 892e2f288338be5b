"""``tierserve eval task-classifier``: train a policy's task classifier on its labelled
examples (``classifier_examples``) and write the weights the policy serves with
(``task_classifier.file``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.commands.policy_args import add_encoder_argument, read_encoder

__all__ = ["register", "run"]


def register(actions: Any) -> None:
    trainer = actions.add_parser(
        "task-classifier", help="train the task classifier a policy serves with"
    )
    trainer.add_argument("policy", type=Path, help="the policy naming classifier_examples")
    trainer.add_argument(
        "--out",
        type=Path,
        help="the weights' JSON; default: the policy's task_classifier.file, else "
        "<policy stem>-task-classifier.json beside it",
    )
    add_encoder_argument(trainer)
    trainer.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tierserve.config import read_yaml
    from tierserve.evaluate.task_classifier import (
        examples_digest,
        load_examples,
        train_task_classifier,
    )

    # Read as data, not as a Policy: the policy may not validate until its weights exist.
    data = read_yaml(args.policy)
    examples_name = data.get("classifier_examples") if isinstance(data, dict) else None
    if not examples_name:
        raise ConfigError(
            f"policy {args.policy} names no classifier_examples",
            hint="add `classifier_examples: <labelled requests>.jsonl` to the policy",
        )
    examples_file = args.policy.parent / examples_name
    named = (data.get("task_classifier") or {}).get("file")
    out = args.out or args.policy.parent / (named or f"{args.policy.stem}-task-classifier.json")
    spec = train_task_classifier(
        load_examples(examples_file), read_encoder(args), trained_on=examples_digest(examples_file)
    )
    out.write_text(spec.weights_json())
    print(
        f"task classifier on {spec.encoder} ({len(spec.folds)} folds, classes "
        f"{', '.join(spec.classes)}) "
        f"trained on {examples_file} -> {out}"
    )
    if not named:
        print(f"set in the policy: task_classifier: {{file: {out.name}}}")
    return 0
