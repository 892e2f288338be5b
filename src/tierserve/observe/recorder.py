"""Where decision records go: the :class:`Recorder` protocol, and the gateway's durable one
(the decision log, then the metrics). Unit tests use an in-memory recorder."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from tierserve.errors import DecisionLogError
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.decision_record import DecisionRecord
from tierserve.observe.metrics import TierserveMetrics

__all__ = ["DurableRecorder", "Recorder"]


class Recorder(Protocol):
    async def record(self, record: DecisionRecord) -> None:
        """Persist ``record``; raises DecisionLogError when it could not be written."""


class DurableRecorder:
    """Commits each record to disk before the response goes out (a stream's last chunk and
    ``[DONE]``); fails closed.

    A record that cannot be written withholds its answer (503, retryable) rather than answer a
    request nobody can audit afterwards.
    """

    def __init__(self, log: DecisionLog, metrics: TierserveMetrics) -> None:
        self._log = log
        self._metrics = metrics

    async def record(self, record: DecisionRecord) -> None:
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._log.append, record)
        except Exception as error:
            raise DecisionLogError(
                f"the decision record of {record.request_id} could not be written to "
                f"{self._log.location}: {type(error).__name__}: {error}",
                hint="retry; operators: check the disk and permissions of "
                "observe.decision_log_path",
            ) from error
        self._metrics.observe_log_write(time.monotonic() - started)
        self._metrics.observe(record)
