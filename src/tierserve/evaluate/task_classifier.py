"""Training the task classifier offline, from a policy's labelled examples.

A logistic regression over the examples' sentence embeddings, calibrated with scikit-learn's
``CalibratedClassifierCV`` (sigmoid, cross-validated), exported as the weights a policy's
``task_classifier`` file holds (:class:`~tierserve.policy.task_model.TaskClassifierSpec`):
what the calibrated model computes, fold by fold, so the gateway's probabilities are the
trained model's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierserve.errors import ConfigError
from tierserve.evaluate.figures import Figures
from tierserve.policy.spec import TaskClass
from tierserve.policy.task_model import ClassScore, TaskClassifierSpec
from tierserve.prompt_models.encoder import Encoder, load_encoder

__all__ = [
    "HoldoutAccuracy",
    "HoldoutSummary",
    "LabelledExample",
    "examples_digest",
    "holdout_accuracy",
    "holdout_summary",
    "load_examples",
    "train_task_classifier",
]


@dataclass(frozen=True, slots=True)
class LabelledExample:
    text: str
    task: TaskClass


def load_examples(path: Path) -> list[LabelledExample]:
    examples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(LabelledExample(str(row["text"]), TaskClass(row["task"])))
        except (ValueError, KeyError) as error:
            raise ConfigError(
                f"{path}:{number}: not a labelled example ({error})",
                hint='each line must be {"text": "...", "task": "<task class>"}',
            ) from None
    return examples


def examples_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _exported(model: Any, encoder: Encoder, trained_on: str | None) -> TaskClassifierSpec:
    """The calibrated model's folds as weights: each fold's linear scores and their sigmoids."""
    classes = [str(c) for c in model.classes_]
    folds = []
    for fold in model.calibrated_classifiers_:
        estimator = fold.estimator
        if [str(c) for c in estimator.classes_] != classes:
            raise ConfigError(
                "a calibration fold saw fewer task classes than the examples hold",
                hint="give every task class at least as many examples as there are folds (5)",
            )
        folds.append(
            {
                task: ClassScore(
                    weights=[float(f"{w:.9g}") for w in estimator.coef_[index]],
                    bias=float(estimator.intercept_[index]),
                    slope=float(calibrator.a_),
                    offset=float(calibrator.b_),
                )
                for index, (task, calibrator) in enumerate(
                    zip(classes, fold.calibrators, strict=True)
                )
            }
        )
    return TaskClassifierSpec(encoder=encoder.name, folds=folds, trained_on=trained_on)


def train_task_classifier(
    examples: Sequence[LabelledExample],
    encoder: Encoder | None = None,
    trained_on: str | None = None,
) -> TaskClassifierSpec:
    """The classifier trained on ``examples``, as the weights a policy serves with."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    encoder = encoder or load_encoder()
    vectors = encoder.encode([e.text for e in examples])
    labels = [e.task.value for e in examples]
    if len(set(labels)) < 3:
        raise ConfigError(
            f"the labelled examples hold {len(set(labels))} task classes; the classifier needs "
            "at least three",
            hint="label examples of every task class the rules do not catch",
        )
    folds = min(5, min(labels.count(label) for label in set(labels)))
    model = CalibratedClassifierCV(
        LogisticRegression(C=4.0, max_iter=2000), method="sigmoid", cv=folds
    )
    model.fit(np.asarray(vectors), labels)
    return _exported(model, encoder, trained_on)


def holdout_accuracy(
    examples: Sequence[LabelledExample],
    *,
    test_fraction: float = 0.3,
    seed: int = 0,
    encoder: Encoder | None = None,
) -> HoldoutAccuracy:
    """Train on a stratified split, report accuracy on the held-out part."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        list(examples),
        test_size=test_fraction,
        random_state=seed,
        stratify=[e.task.value for e in examples],
    )
    encoder = encoder or load_encoder()
    classifier = train_task_classifier(train, encoder)
    predictions = classifier.predict(encoder.encode([e.text for e in test]).tolist())
    correct = [p[0] == e.task.value for p, e in zip(predictions, test, strict=True)]
    per_class = {
        task.value: float(
            np.mean([c for c, e in zip(correct, test, strict=True) if e.task == task])
        )
        for task in sorted({e.task for e in test}, key=str)
    }
    return HoldoutAccuracy(
        train=len(train),
        test=len(test),
        accuracy=float(np.mean(correct)),
        per_class=per_class,
        seed=seed,
    )


class HoldoutAccuracy(Figures):
    train: int
    test: int
    accuracy: float
    per_class: dict[str, float]
    seed: int


class HoldoutSummary(Figures):
    """The task classifier's accuracy on held-out examples, over several random splits."""

    examples: int
    held_out_accuracy_by_seed: list[float]
    mean: float
    first_split: HoldoutAccuracy


def holdout_summary(
    examples: Sequence[LabelledExample], seeds: int, encoder: Encoder | None = None
) -> HoldoutSummary:
    """:func:`holdout_accuracy` over ``seeds`` random splits, one encoder for all."""
    encoder = encoder or load_encoder()
    splits = [holdout_accuracy(examples, seed=seed, encoder=encoder) for seed in range(seeds)]
    accuracies = [split.accuracy for split in splits]
    return HoldoutSummary(
        examples=len(examples),
        held_out_accuracy_by_seed=accuracies,
        mean=float(np.mean(accuracies)),
        first_split=splits[0],
    )
