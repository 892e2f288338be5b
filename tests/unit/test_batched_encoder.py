"""Concurrent embeddings share encoder passes, each caller gets its own row."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tierserve.prompt_models.batched_encoder import BatchedEncoder


class SlowEncoder:
    """Encodes a text as [its length, its word count]; the first pass blocks until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.passes: list[list[str]] = []

    def encode_many(self, texts: Sequence[str]) -> np.ndarray:
        self.passes.append(list(texts))
        self.started.set()
        self.release.wait(timeout=10)
        if any(t.startswith("boom") for t in texts):
            raise RuntimeError("encoder failed")
        return np.asarray([[len(t), len(t.split())] for t in texts], dtype=float)


def test_a_lone_request_runs_at_once_and_gets_its_own_row() -> None:
    encoder = SlowEncoder()
    encoder.release.set()
    batched = BatchedEncoder(encoder)
    assert batched.encode("what are your hours").tolist() == [19, 4]
    assert encoder.passes == [["what are your hours"]]


def test_requests_that_arrive_while_the_encoder_is_busy_share_the_next_pass() -> None:
    encoder = SlowEncoder()
    batched = BatchedEncoder(encoder)
    texts = ["first"] + [f"request number {i} " + "x " * i for i in range(5)]
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        first = pool.submit(batched.encode, texts[0])
        assert encoder.started.wait(timeout=10)
        rest = [pool.submit(batched.encode, text) for text in texts[1:]]
        while len(batched._queue) < len(rest):  # all queued behind the busy encoder
            threading.Event().wait(0.01)
        encoder.release.set()
        rows = [first.result(timeout=10)] + [f.result(timeout=10) for f in rest]
    assert list(batched.batch_sizes) == [1, 5]
    assert [row.tolist() for row in rows] == [[len(t), len(t.split())] for t in texts]


def test_an_encoder_failure_reaches_every_caller_of_that_pass_and_the_next_pass_runs() -> None:
    encoder = SlowEncoder()
    encoder.release.set()
    batched = BatchedEncoder(encoder)
    with pytest.raises(RuntimeError, match="encoder failed"):
        batched.encode("boom")
    assert batched.encode("a letter").tolist() == [8, 2]
