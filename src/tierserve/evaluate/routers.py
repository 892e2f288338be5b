"""Pre-generation routers: a score per request, before any tier runs (higher: needs the top).

* ``random``: a uniform score (RouteLLM's random baseline; APGR 0.5 in expectation).
* ``length``: the prompt's length in characters (longer prompts are harder, a cheap heuristic).
* ``embedding``: a difficulty predictor: the prompt's MiniLM embedding (the model packaged on
  PyPI that the task classifier uses), and a logistic regression trained on the train split to
  predict that the top tier answers better than the cheapest ("strong win", RouteLLM's label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tierserve.evaluate.outcomes import OutcomeSet

__all__ = ["EmbeddingDifficultyRouter", "length_scores", "random_scores"]


def random_scores(count: int, seed: int = 0) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).random(count)]


def length_scores(outcomes: OutcomeSet) -> list[float]:
    return [float(len(row.prompt)) for row in outcomes.rows]


def _strong_wins(outcomes: OutcomeSet) -> np.ndarray:
    weak, strong = outcomes.tiers[0], outcomes.tiers[-1]
    return np.array(
        [r.outcomes[strong].quality > r.outcomes[weak].quality for r in outcomes.rows], dtype=int
    )


class EmbeddingDifficultyRouter:
    def __init__(self, encoder: Any, model: Any) -> None:
        self._encoder = encoder
        self._model = model

    @classmethod
    def train(cls, train: OutcomeSet, encoder: Any | None = None) -> EmbeddingDifficultyRouter:
        from sklearn.linear_model import LogisticRegression

        from tierserve.signals.task_model import sentence_encoder

        encoder = encoder or sentence_encoder()
        labels = _strong_wins(train)
        if labels.min() == labels.max():
            raise ValueError("the train split has only one label; the router cannot learn")
        vectors = encoder.encode([r.prompt for r in train.rows], normalize_embeddings=True)
        model = LogisticRegression(max_iter=2000, class_weight="balanced")
        model.fit(vectors, labels)
        return cls(encoder, model)

    def scores(self, prompts: Sequence[str]) -> list[float]:
        vectors = self._encoder.encode(list(prompts), normalize_embeddings=True)
        return [float(p) for p in self._model.predict_proba(vectors)[:, 1]]
