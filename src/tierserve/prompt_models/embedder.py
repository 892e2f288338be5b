"""The gateway's prompt embedder: one encoder pass per prompt, shared by every prompt model.

The task classifier, the question kinds and a route's start router all read one embedding of
the prompt, cut as the policy says (:class:`~tierserve.policy.start_router.PromptCut`). The
embedder remembers the last views it embedded: planning one request runs the encoder once
however many models read it.
Concurrent requests share batched passes (:class:`BatchedEncoder`) where the encoder batches;
otherwise their passes run side by side.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tierserve.policy.spec import TaskClass
from tierserve.policy.start_router import EncoderName, PromptCut
from tierserve.policy.task_model import TaskClassifierSpec
from tierserve.prompt_models.batched_encoder import BatchedEncoder
from tierserve.prompt_models.encoder import Encoder, load_encoder

if TYPE_CHECKING:
    from tierserve.policy.spec import Policy

__all__ = ["EmbeddingTaskClassifier", "SentenceEmbedder", "embedder_for"]


class SentenceEmbedder:
    """A :class:`~tierserve.policy.start_router.PromptEmbedder` over one encoder."""

    def __init__(
        self, encoder: Encoder, cut: PromptCut | None = None, *, remembered: int = 1024
    ) -> None:
        self._encoder = encoder
        self._cut = cut or PromptCut()
        self._batched = BatchedEncoder(self) if encoder.batches else None
        self._recent: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    @property
    def encoder_name(self) -> EncoderName:
        return self._encoder.name

    @property
    def dimensions(self) -> int:
        return self._encoder.dimensions

    def encode_many(self, texts: Sequence[str]) -> np.ndarray:
        kept, _ = self._encoder.keep_ends(list(texts))
        return self._encoder.encode(kept)

    def embed(self, text: str) -> Sequence[float]:
        view = self._cut.view(text)
        with self._lock:
            known = self._recent.get(view)
            if known is not None:
                self._recent.move_to_end(view)
                return known
        row = self.encode_many([view])[0] if self._batched is None else self._batched.encode(view)
        vector = tuple(float(x) for x in row)
        with self._lock:
            self._recent[view] = vector
            while len(self._recent) > self._remembered:
                self._recent.popitem(last=False)
        return vector


class EmbeddingTaskClassifier:
    """A :class:`~tierserve.policy.classify.TaskPredictor`: the policy's trained weights over
    the gateway's embedding of the prompt."""

    def __init__(self, spec: TaskClassifierSpec, embedder: SentenceEmbedder) -> None:
        self._spec = spec
        self._embedder = embedder

    def predict(self, text: str) -> tuple[TaskClass, float]:
        vector = self._embedder.embed(text)
        task, probability = self._spec.predict([vector])[0]
        return TaskClass(task), probability


def embedder_for(
    policy: Policy, encoder: Encoder | None = None, cache_dir: Path | None = None
) -> SentenceEmbedder | None:
    """The prompt embedder ``policy``'s prompt models need (None when it has none), over
    ``encoder`` (default: the one they were trained on, built in ``cache_dir`` if need be),
    checked against their weights."""
    name = policy.encoder
    if name is None:
        return None
    embedder = SentenceEmbedder(encoder or load_encoder(name, cache_dir), policy.prompt_cut)
    policy.check_embedding(embedder.encoder_name, embedder.dimensions)
    return embedder
