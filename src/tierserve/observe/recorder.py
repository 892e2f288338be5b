"""The gateway's :class:`~tierserve.api.recording.Recorder`: the decision log, then the metrics."""

from __future__ import annotations

import asyncio
import time

from tierserve.errors import DecisionLogError
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.record import DecisionRecord

__all__ = ["DurableRecorder"]


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
        self._metrics.decision_log_write_latency.observe(time.monotonic() - started)
        self._metrics.observe(record)
