"""Pre-generation routers: a score per request, before any tier runs (higher: needs the top).

* ``random``: a uniform score (RouteLLM's random baseline; APGR 0.5 in expectation).
* ``length``: the prompt's length in characters (longer prompts are harder, a cheap heuristic).
* ``embedding``: a difficulty predictor: the MiniLM embedding (the model packaged on PyPI that
  the task classifier uses) of the part of the prompt that differs, and a logistic regression
  trained on the train split to predict that the top tier answers better than the cheapest
  ("strong win", RouteLLM's label).
* ``trained`` and ``knn``: routers trained from logged outcomes to predict, per tier below the
  top, whether that tier's answer suffices (is acceptable): a logistic regression whose
  strength is chosen by cross-validated log loss on the train split, or k nearest neighbours
  by cosine. The score is the probability that the cheapest tier does
  not suffice; serving starts the ladder at the cheapest tier predicted to suffice.

Embedding routers see the question, not the boilerplate around it: the prefix and the suffix
that every training prompt shares (few-shot examples, instructions) are cut off before
embedding, and a prompt still longer than the encoder's window keeps its end (where the
question is) and is counted as truncated, so a report can say so.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tierserve.evaluate.outcomes import OutcomeSet, acceptable
from tierserve.policy.start_router import (
    StartRouterSpec,
    TierSufficiency,
    first_sufficient,
)
from tierserve.prompt_models.encoder import Encoder, PromptView

__all__ = [
    "EmbeddingDifficultyRouter",
    "PromptView",
    "SufficiencyRouter",
    "cross_fitted",
    "length_scores",
    "random_scores",
    "start_indexes",
]


def random_scores(count: int, seed: int = 0) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).random(count)]


def length_scores(outcomes: OutcomeSet) -> list[float]:
    return [float(len(row.prompt)) for row in outcomes.rows]


def _encoder(encoder: Encoder | None) -> Encoder:
    from tierserve.prompt_models.encoder import load_encoder

    return encoder or load_encoder()


class EmbeddingDifficultyRouter:
    def __init__(self, encoder: Encoder, model: Any, view: PromptView) -> None:
        self._encoder = encoder
        self._model = model
        self.view = view

    @classmethod
    def train(
        cls, train: OutcomeSet, encoder: Encoder | None = None, view: PromptView | None = None
    ) -> EmbeddingDifficultyRouter:
        """``view``: how prompts are cut before embedding (default: learnt from ``train``)."""
        from sklearn.linear_model import LogisticRegression

        encoder = _encoder(encoder)
        weak, strong = train.tiers[0], train.tiers[-1]
        labels = np.array(
            [r.outcomes[strong].quality > r.outcomes[weak].quality for r in train.rows], dtype=int
        )
        if labels.min() == labels.max():
            raise ValueError("the train split has only one label; the router cannot learn")
        prompts = [r.prompt for r in train.rows]
        view = view or PromptView.learn(prompts)
        model = LogisticRegression(max_iter=2000, class_weight="balanced")
        model.fit(view.embed(encoder, prompts), labels)
        return cls(encoder, model, view)

    def scores(self, prompts: Sequence[str]) -> list[float]:
        vectors = self.view.embed(self._encoder, prompts)
        return [float(p) for p in self._model.predict_proba(vectors)[:, 1]]


Classifier = Literal["logistic", "knn"]


@dataclass
class SufficiencyRouter:
    """Per tier below the top, the probability that its answer suffices, from the prompt."""

    tiers: tuple[str, ...]
    encoder: Encoder
    models: dict[str, Any]
    """A classifier per tier below the top (a constant where the train split has one label)."""
    view: PromptView = field(default_factory=PromptView)

    @classmethod
    def train(
        cls, train: OutcomeSet, classifier: Classifier = "logistic", encoder: Encoder | None = None
    ) -> SufficiencyRouter:
        encoder = _encoder(encoder)
        view, vectors, labels = _sufficiency_data(train, encoder)
        models = {tier: _fitted(classifier, vectors, y) for tier, y in labels.items()}
        return cls(tuple(train.tiers), encoder, models, view)

    def suffices(self, prompts: Sequence[str]) -> dict[str, list[float]]:
        """Per tier below the top, the probability that its answer to each prompt suffices."""
        vectors = self.view.embed(self.encoder, prompts)
        found = {}
        for tier, model in self.models.items():
            if isinstance(model, float):
                found[tier] = [model] * len(prompts)
            else:
                found[tier] = [float(p) for p in model.predict_proba(vectors)[:, 1]]
        return found

    def scores(self, prompts: Sequence[str]) -> list[float]:
        """1 - P(the cheapest tier suffices): higher needs a stronger tier."""
        return [1.0 - p for p in self.suffices(prompts)[self.tiers[0]]]

    def served(self) -> StartRouterSpec:
        """The router as a policy's ``start_router`` serves it (logistic models only: a
        gateway computes them without scikit-learn)."""
        tiers: dict[str, TierSufficiency] = {}
        for tier, model in self.models.items():
            if isinstance(model, float):
                tiers[tier] = TierSufficiency(constant=model)
            elif hasattr(model, "coef_"):
                weights = [float(w) for w in model.coef_[0]]
                tiers[tier] = TierSufficiency(weights=weights, bias=float(model.intercept_[0]))
            else:
                raise ValueError(f"a {type(model).__name__} router cannot be served; use logistic")
        return StartRouterSpec(
            encoder=self.encoder.name, prefix=self.view.prefix, suffix=self.view.suffix, tiers=tiers
        )


def _sufficiency_data(
    train: OutcomeSet, encoder: Encoder
) -> tuple[PromptView, np.ndarray, dict[str, np.ndarray]]:
    """The view learnt from the train prompts, their embeddings, and per tier below the top
    whether each row's answer there was acceptable (the label the routers learn)."""
    prompts = [r.prompt for r in train.rows]
    view = PromptView.learn(prompts)
    labels = {
        tier: np.array([acceptable(r.outcomes[tier].quality) for r in train.rows], int)
        for tier in train.tiers[:-1]
    }
    return view, view.embed(encoder, prompts), labels


def cross_fitted(
    train: OutcomeSet, encoder: Encoder | None = None, folds: int = 5
) -> dict[str, list[float]]:
    """Per tier below the top, each train row's P(suffices) from a logistic router fitted on
    the other folds: in-sample predictions would flatter whatever is chosen with them."""
    _, vectors, labels = _sufficiency_data(train, _encoder(encoder))
    fold = np.arange(len(vectors)) % folds
    found: dict[str, list[float]] = {}
    for tier, y in labels.items():
        predicted = np.zeros(len(vectors))
        for k in range(folds):
            model = _fitted("logistic", vectors[fold != k], y[fold != k])
            held = vectors[fold == k]
            predicted[fold == k] = (
                model if isinstance(model, float) else model.predict_proba(held)[:, 1]
            )
        found[tier] = [float(p) for p in predicted]
    return found


def start_indexes(
    tiers: Sequence[str], suffices: dict[str, list[float]], min_probability: float
) -> list[int]:
    """Per row, the index of the tier a start router begins at (the gateway's rule)."""
    rows = len(next(iter(suffices.values()))) if suffices else 0
    starts = []
    for row in range(rows):

        def probability(tier: str, row: int = row) -> float | None:
            return suffices[tier][row] if tier in suffices else None

        tier, _ = first_sufficient(tiers, probability, min_probability)
        starts.append(tiers.index(tier))
    return starts


def _fitted(classifier: Classifier, vectors: np.ndarray, labels: np.ndarray) -> Any:
    """The classifier fitted to ``labels``, or the constant share when there is one label."""
    if labels.min() == labels.max():
        return float(labels[0])
    if classifier == "knn":
        from sklearn.neighbors import KNeighborsClassifier

        neighbours = max(1, min(15, len(labels) // 4))
        return KNeighborsClassifier(neighbours, weights="distance", metric="cosine").fit(
            vectors, labels
        )
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    folds = int(min(5, np.bincount(labels).min()))
    if folds < 2:
        return LogisticRegression(max_iter=3000).fit(vectors, labels)
    # Strength chosen by cross-validated log loss (a proper scoring rule) on the train split,
    # unweighted: the probabilities are what serving compares with a threshold.
    model = LogisticRegressionCV(Cs=_STRENGTHS, cv=folds, scoring="neg_log_loss", max_iter=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-learn's attribute renames
        return model.fit(vectors, labels)


_STRENGTHS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
