"""Concurrent task predictions share encoder passes, each caller gets its own answer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from tierserve.policy.spec import TaskClass
from tierserve.prompt_models.batched_predictor import BatchedPredictor


class SlowEncoder:
    """Labels a text by its first word; the first pass blocks until released."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.passes: list[list[str]] = []

    def predict_many(self, texts: Sequence[str]) -> list[tuple[TaskClass, float]]:
        self.passes.append(list(texts))
        self.started.set()
        self.release.wait(timeout=10)
        if any(t.startswith("boom") for t in texts):
            raise RuntimeError("encoder failed")
        return [(TaskClass(t.split()[0]), 0.5 + len(t) / 100) for t in texts]


def test_a_lone_request_runs_at_once_and_gets_its_own_answer() -> None:
    encoder = SlowEncoder()
    encoder.release.set()
    predictor = BatchedPredictor(encoder)
    assert predictor.predict("faq what are your hours") == (TaskClass.FAQ, 0.5 + 23 / 100)
    assert encoder.passes == [["faq what are your hours"]]


def test_requests_that_arrive_while_the_encoder_is_busy_share_the_next_pass() -> None:
    encoder = SlowEncoder()
    predictor = BatchedPredictor(encoder)
    texts = ["faq first"] + [f"{task} request {i}" for i, task in enumerate(
        ["extraction", "drafting", "faq", "tool_use", "extraction"]
    )]  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        first = pool.submit(predictor.predict, texts[0])
        assert encoder.started.wait(timeout=10)
        rest = [pool.submit(predictor.predict, text) for text in texts[1:]]
        while len(predictor._queue) < len(rest):  # all queued behind the busy encoder
            threading.Event().wait(0.01)
        encoder.release.set()
        answers = [first.result(timeout=10)] + [f.result(timeout=10) for f in rest]
    assert predictor.batch_sizes == [1, 5]
    assert [task for task, _ in answers] == [TaskClass(t.split()[0]) for t in texts]
    assert [p for _, p in answers] == [0.5 + len(t) / 100 for t in texts]


def test_an_encoder_failure_reaches_every_caller_of_that_pass_and_the_next_pass_runs() -> None:
    encoder = SlowEncoder()
    encoder.release.set()
    predictor = BatchedPredictor(encoder)
    with pytest.raises(RuntimeError, match="encoder failed"):
        predictor.predict("boom")
    assert predictor.predict("drafting a letter")[0] is TaskClass.DRAFTING
