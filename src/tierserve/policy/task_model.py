"""The learned task classifier as data: trained offline, shipped as weights, read by the policy.

``tierserve eval task-classifier`` fits a logistic regression over the sentence embeddings of
the policy's labelled examples and calibrates it with scikit-learn's ``CalibratedClassifierCV``
(sigmoid, cross-validated), then writes what that model computes: per fold, each class's linear
score over the embedding and the sigmoid fitted to it on the fold's held-out part. A
probability is each fold's sigmoids normalised over the classes, averaged over the folds —
exactly the calibrated model's ``predict_proba``, so the policy's
``classifier_min_probability`` means what it meant in training, and serving needs neither
scikit-learn nor a training step at start.

Pure data and arithmetic: the embeddings are the gateway's encoder's, passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierserve.policy.start_router import PromptModelFile

__all__ = ["ClassScore", "TaskClassifierSpec"]


class ClassScore(BaseModel):
    """One class in one fold: ``sigmoid(-(slope * (weights . x + bias) + offset))``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: list[float] = Field(min_length=1)
    bias: float
    slope: float = Field(description="The fold's fitted sigmoid: its slope (a).")
    offset: float = Field(description="The fold's fitted sigmoid: its offset (b).")


class TaskClassifierSpec(PromptModelFile):
    """The task classifier a policy serves with (its `file` is written by
    `tierserve eval task-classifier`)."""

    folds: list[dict[str, ClassScore]] = Field(
        default_factory=list,
        description="Per cross-validation fold: each task class's calibrated score.",
    )
    trained_on: str | None = Field(
        default=None,
        description="SHA-256 of the labelled examples file it was trained on: `policy check` "
        "says when the examples changed since.",
    )

    policy_key = "task_classifier"
    models_key = "folds"
    extra_keys: ClassVar[tuple[str, ...]] = ("trained_on",)

    def weight_lengths(self) -> set[int]:
        return {len(score.weights) for fold in self.folds for score in fold.values()}

    @property
    def classes(self) -> list[str]:
        return sorted(self.folds[0])

    @model_validator(mode="after")
    def _same_classes(self) -> TaskClassifierSpec:
        if not self.folds:
            raise ValueError("a task_classifier needs a `file` or its `folds`")
        if any(sorted(fold) != self.classes for fold in self.folds) or len(self.classes) < 2:
            raise ValueError("task_classifier: every fold must score the same two or more classes")
        return self

    @cached_property
    def _fold_arrays(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per fold, its classes' weights, biases, slopes and offsets as arrays (built once:
        the gateway scores every classified request with them)."""
        arrays = []
        for fold in self.folds:
            scores = [fold[c] for c in self.classes]
            arrays.append(
                (
                    np.asarray([s.weights for s in scores]),
                    np.asarray([s.bias for s in scores]),
                    np.asarray([s.slope for s in scores]),
                    np.asarray([s.offset for s in scores]),
                )
            )
        return arrays

    def probabilities(self, vectors: Sequence[Sequence[float]]) -> np.ndarray:
        """(len(vectors), len(classes)): each row the classes' calibrated probabilities."""
        x = np.asarray(vectors, dtype=np.float64)
        total = np.zeros((len(x), len(self.classes)))
        for weights, bias, slope, offset in self._fold_arrays:
            linear = x @ weights.T + bias
            proba = 1.0 / (1.0 + np.exp(slope * linear + offset))
            norm = proba.sum(axis=1, keepdims=True)
            uniform = np.full_like(proba, 1.0 / len(self.classes))
            total += np.divide(proba, norm, out=uniform, where=norm != 0)
        return total / len(self.folds)

    def predict(self, vectors: Sequence[Sequence[float]]) -> list[tuple[str, float]]:
        """Each vector's most likely class and its probability."""
        probabilities = self.probabilities(vectors)
        best = probabilities.argmax(axis=1)
        return [
            (self.classes[b], float(row[b])) for b, row in zip(best, probabilities, strict=True)
        ]
