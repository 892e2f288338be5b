"""Which sentence encoder the prompt models should read: accuracy and speed, in one run.

Each encoder is scored on what the gateway asks of it:

* the task classifier: held-out accuracy on the support policy's labelled examples (mean over
  random stratified splits, as `tierserve policy check --seeds` reports it);
* question kinds: trained on the `general` set's train split, accuracy on its test split and
  on the `phrasings` set, a source it never saw;
* speed: milliseconds per prompt through the gateway's embedder (no memory of earlier
  prompts), one caller and 16 callers at once, p50 and p99, and prompts per second.

Encoders: the two a policy can name (`all-MiniLM-L6-v2-int8`, `all-MiniLM-L6-v2`) and static
token embeddings distilled from MiniLM by model2vec (`--static DIR`, folders written by
`scripts/distill_static_encoder.py`; `make bench-encoders` builds them). Writes
benchmarks/results/encoders.json.

    python benchmarks/encoders.py [--static build/static-256 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from tierserve.bench.report import percentile
from tierserve.evaluate.kinds import KindClassifier
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet
from tierserve.evaluate.task_classifier import holdout_summary, load_examples
from tierserve.policy.start_router import EncoderName
from tierserve.prompt_models.embedder import SentenceEmbedder
from tierserve.prompt_models.encoder import Encoder, MiniLMEncoder, MiniLMInt8Encoder

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "serve_configs/policies/support-examples.jsonl"
OUTCOMES = ROOT / "benchmarks/results/gptq_host"


class StaticEncoder:
    """model2vec's static embeddings of MiniLM's tokens, averaged: a lookup and a mean."""

    batches = True

    def __init__(self, folder: Path) -> None:
        from model2vec import StaticModel

        self._model = StaticModel.from_pretrained(folder, normalize=True, force_download=False)

    @property
    def name(self) -> EncoderName:
        return "all-MiniLM-L6-v2"  # only its name differs; nothing here reads it

    @property
    def dimensions(self) -> int:
        return int(self._model.dim)

    def keep_ends(self, texts: list[str]) -> tuple[list[str], int]:
        return texts, 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        vectors = self._model.encode(list(texts), max_length=None, use_multiprocessing=False)
        return np.asarray(vectors, dtype=np.float32)


def _rows(source: str) -> list[OutcomeRow]:
    """The kind-labelled questions of one source, as collected on the GPTQ host."""
    return list(OutcomeSet.read(OUTCOMES / f"outcomes_{source}.jsonl").rows)


def _kind_accuracy(encoder: Encoder) -> dict[str, float]:
    general = _rows("general")
    train = [row for row in general if row.split == "train"]
    classifier = KindClassifier.train(train, encoder, min_probability=0.0)

    def accuracy(rows: list[OutcomeRow]) -> float:
        predicted = classifier.predict([row.prompt for row in rows])
        return float(
            np.mean([p == row.labels.kind for p, row in zip(predicted, rows, strict=True)])
        )

    return {
        "general_test": accuracy([row for row in general if row.split == "test"]),
        "phrasings_left_out": accuracy(_rows("phrasings")),
    }


def _speed(encoder: Encoder, prompts: list[str], callers: int) -> dict[str, float]:
    embedder = SentenceEmbedder(encoder, remembered=0)
    embedder.embed(prompts[0])  # warm
    latencies: list[float] = []

    def one(text: str) -> None:
        start = time.perf_counter()
        embedder.embed(text)
        latencies.append((time.perf_counter() - start) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=callers) as pool:
        list(pool.map(one, prompts))
    elapsed = time.perf_counter() - started
    return {
        "callers": callers,
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "prompts_per_s": round(len(prompts) / elapsed, 1),
    }


def measure(name: str, encoder: Encoder, seeds: int, prompts: list[str]) -> dict[str, Any]:
    task = holdout_summary(load_examples(EXAMPLES), seeds, encoder)
    return {
        "encoder": name,
        "dimensions": encoder.dimensions,
        "task_classifier_held_out": round(task.mean, 4),
        "kinds": {k: round(v, 4) for k, v in _kind_accuracy(encoder).items()},
        "speed": [_speed(encoder, prompts, callers) for callers in (1, 16)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--static", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/encoders.json")
    args = parser.parse_args()

    prompts = [row.prompt for row in _rows("general") + _rows("phrasings")]
    encoders: list[tuple[str, Encoder]] = [
        ("all-MiniLM-L6-v2-int8", MiniLMInt8Encoder()),
        ("all-MiniLM-L6-v2", MiniLMEncoder()),
    ]
    encoders += [(f"static {folder.name}", StaticEncoder(folder)) for folder in args.static]
    results = [measure(name, encoder, args.seeds, prompts) for name, encoder in encoders]
    report = {"prompts_timed": len(prompts), "seeds": args.seeds, "encoders": results}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
