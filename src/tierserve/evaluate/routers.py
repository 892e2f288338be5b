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

__all__ = [
    "EmbeddingDifficultyRouter",
    "PromptView",
    "SufficiencyRouter",
    "length_scores",
    "random_scores",
]


def random_scores(count: int, seed: int = 0) -> list[float]:
    return [float(x) for x in np.random.default_rng(seed).random(count)]


def length_scores(outcomes: OutcomeSet) -> list[float]:
    return [float(len(row.prompt)) for row in outcomes.rows]


def _shared_start(texts: Sequence[str]) -> str:
    """The characters every text starts with (the first and last in sort order bound them)."""
    low, high = min(texts), max(texts)
    size = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b), len(low))
    return low[:size]


def _word_cut(text: str, from_end: bool = False) -> str:
    """``text`` cut back to a whole-word boundary (a shared run may end mid-word)."""
    if from_end:
        index = min((text.find(c) for c in " \n\t" if c in text), default=-1)
        return text[index:] if index >= 0 else ""
    index = max(text.rfind(c) for c in " \n\t")
    return text[: index + 1] if index >= 0 else ""


@dataclass
class PromptView:
    """The part of a prompt a router embeds, and what it had to cut to get there."""

    prefix: str = ""
    suffix: str = ""
    truncated: int = 0
    """Prompts (of the last :meth:`embed`) longer than the encoder's window: their end kept."""
    seen: int = 0

    @classmethod
    def learn(cls, prompts: Sequence[str]) -> PromptView:
        """The prefix and the suffix every prompt shares (empty when they share none)."""
        if len(prompts) < 2:
            return cls()
        prefix = _word_cut(_shared_start(prompts))
        suffix = _word_cut(_shared_start([p[::-1] for p in prompts])[::-1], True)
        return cls(prefix, suffix)

    def distinct(self, prompt: str) -> str:
        text = prompt
        if self.prefix and text.startswith(self.prefix):
            text = text[len(self.prefix) :]
        if self.suffix and text.endswith(self.suffix):
            text = text[: -len(self.suffix)]
        return text.strip() or prompt

    def embed(self, encoder: Any, prompts: Sequence[str]) -> np.ndarray:
        texts = [self.distinct(p) for p in prompts]
        window = int(getattr(encoder, "max_seq_length", 0) or 0) - 2  # [CLS] and [SEP]
        tokenizer = getattr(encoder, "tokenizer", None)
        self.truncated, self.seen = 0, len(texts)
        if window > 0 and tokenizer is not None:
            ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
            for index, tokens in enumerate(ids):
                if len(tokens) > window:
                    texts[index] = tokenizer.decode(tokens[-window:])
                    self.truncated += 1
        return np.asarray(encoder.encode(texts, normalize_embeddings=True))

    def describe(self) -> dict[str, Any]:
        return {
            "shared_prefix_chars": len(self.prefix),
            "shared_suffix_chars": len(self.suffix),
            "truncated": self.truncated,
            "of": self.seen,
        }


def _encoder(encoder: Any | None) -> Any:
    from tierserve.signals.task_model import sentence_encoder

    return encoder or sentence_encoder()


class EmbeddingDifficultyRouter:
    def __init__(self, encoder: Any, model: Any, view: PromptView) -> None:
        self._encoder = encoder
        self._model = model
        self.view = view

    @classmethod
    def train(
        cls, train: OutcomeSet, encoder: Any | None = None, view: PromptView | None = None
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
    encoder: Any
    models: dict[str, Any]
    """A classifier per tier below the top (a constant where the train split has one label)."""
    view: PromptView = field(default_factory=PromptView)

    @classmethod
    def train(
        cls, train: OutcomeSet, classifier: Classifier = "logistic", encoder: Any | None = None
    ) -> SufficiencyRouter:
        encoder = _encoder(encoder)
        prompts = [r.prompt for r in train.rows]
        view = PromptView.learn(prompts)
        vectors = view.embed(encoder, prompts)
        models: dict[str, Any] = {}
        for tier in train.tiers[:-1]:
            labels = np.array([acceptable(r.outcomes[tier].quality) for r in train.rows], int)
            models[tier] = _fitted(classifier, vectors, labels)
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
