"""One encoder pass for every text that arrives while the encoder is busy.

Planning runs in worker threads, so under load several requests want the encoder at once. Run
side by side, each forward pass takes the CPU's cores from the others (and from the engines on
the same machine); run one after another in batches, the encoder does the same work in fewer,
larger matrix products. The first caller to find the encoder idle runs it for every text queued
by then; the others wait for their answer. A lone request waits for nobody.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["BatchedEncoder", "ManyTextEncoder"]


class ManyTextEncoder(Protocol):
    def encode_many(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text."""
        ...


@dataclass(slots=True)
class _Waiting:
    text: str
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class BatchedEncoder:
    """``encode(text)`` for many threads at once, their texts batched into shared passes."""

    def __init__(self, encoder: ManyTextEncoder, *, max_batch: int = 32) -> None:
        self._encoder = encoder
        self._max_batch = max_batch
        self._changed = threading.Condition()
        self._queue: list[_Waiting] = []
        self._busy = False
        self.batch_sizes: deque[int] = deque(maxlen=1024)
        """The last passes' batch sizes (read by tests and benchmarks)."""

    def encode(self, text: str) -> np.ndarray:
        mine = _Waiting(text)
        with self._changed:
            self._queue.append(mine)
        while True:
            with self._changed:
                while self._busy and not mine.done:
                    self._changed.wait()
                if mine.done:
                    break
                self._busy = True
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
            self._run(batch)
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    def _run(self, batch: list[_Waiting]) -> None:
        try:
            rows = self._encoder.encode_many([w.text for w in batch])
        except BaseException as error:  # every caller in the batch sees the encoder's failure
            for waiting in batch:
                waiting.error = error
        else:
            for waiting, row in zip(batch, rows, strict=True):
                waiting.result = row
        with self._changed:
            self.batch_sizes.append(len(batch))
            for waiting in batch:
                waiting.done = True
            self._busy = False
            self._changed.notify_all()
