"""Retrain the shipped policies' prompt models on another sentence encoder, each on the rows
it was first trained on, with the same settings: the thresholds chosen around them stay.

Every prompt model file under serve_configs/policies is listed here with its training data
(the train split of a committed outcome file, or the policy's labelled examples); retrained
on the encoder they were trained on, they come out as shipped (to 1e-5). A policy's prompt
models must share one encoder, so they move together:

    python scripts/retrain_prompt_models.py --encoder all-MiniLM-L6-v2-int8
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tierserve.evaluate.kinds import KindClassifier
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.routers import SufficiencyRouter
from tierserve.evaluate.task_classifier import (
    examples_digest,
    load_examples,
    train_task_classifier,
)
from tierserve.policy.start_router import DEFAULT_ENCODER, ENCODERS
from tierserve.prompt_models.encoder import load_encoder

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "serve_configs/policies"
RESULTS = ROOT / "benchmarks/results"

QUESTION_KINDS = {
    "routers/general-kinds.json": RESULTS / "outcomes_general.jsonl",
    "support-calibrated-gptq.general-kinds.json": RESULTS / "gptq_host/outcomes_general.jsonl",
    "support-replay-calibrated-by-kind.general-kinds.json": RESULTS
    / "outcomes_general_replayed_by_kind.jsonl",
}
START_ROUTERS = {
    "support-replay-calibrated.general-router.json": RESULTS / "outcomes_general_replayed.jsonl",
}
TASK_CLASSIFIERS = {"routers/support-tasks.json": POLICIES / "support-examples.jsonl"}
KIND_MIN_PROBABILITY = 0.5  # what `eval calibrate --by-kind` trained them with


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--encoder", choices=ENCODERS, default=DEFAULT_ENCODER)
    args = parser.parse_args()
    encoder = load_encoder(args.encoder)
    for name, examples in TASK_CLASSIFIERS.items():
        spec = train_task_classifier(
            load_examples(examples), encoder, trained_on=examples_digest(examples)
        )
        (POLICIES / name).write_text(spec.weights_json())
        print(f"{name}: task classifier on {len(load_examples(examples))} examples")
    for name, outcomes in QUESTION_KINDS.items():
        train = OutcomeSet.read(outcomes).split("train")
        kinds = KindClassifier.train(train.rows, encoder, KIND_MIN_PROBABILITY).served()
        (POLICIES / name).write_text(kinds.weights_json())
        print(f"{name}: question kinds on {len(train.rows)} rows of {outcomes.name}")
    for name, outcomes in START_ROUTERS.items():
        train = OutcomeSet.read(outcomes).split("train")
        router = SufficiencyRouter.train(train, "logistic", encoder).served()
        (POLICIES / name).write_text(router.weights_json())
        print(f"{name}: start router on {len(train.rows)} rows of {outcomes.name}")


if __name__ == "__main__":
    main()
