"""After the ladder: the session floor, the review lane, the decision record, the token charge.

A record is committed before the caller sees the answer's last chunk; the record the caller's
response is built from is the record as it was, the log keeps it as the policy keeps prompts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from tierserve.api.preparation import Prepared
from tierserve.api.sessions import SessionStore
from tierserve.api.trace import review_item
from tierserve.errors import DecisionLogError
from tierserve.observe.decision_record import CacheStatus, DecisionRecord
from tierserve.observe.pricing import TierPrice
from tierserve.observe.privacy import kept_record
from tierserve.observe.recorder import Recorder
from tierserve.policy.compose import raised_floor
from tierserve.policy.runner import AnswerStarted, LadderResult
from tierserve.policy.spec import Policy
from tierserve.policy.step import Outcome, Step
from tierserve.quota import Quota
from tierserve.review import ReviewQueue

__all__ = ["RecordKeeper"]

_log = logging.getLogger(__name__)


class RecordKeeper:
    def __init__(
        self,
        policy: Policy,
        prices: Mapping[str, TierPrice],
        sessions: SessionStore,
        *,
        recorder: Recorder | None = None,
        review_queue: ReviewQueue | None = None,
        quota: Quota | None = None,
    ) -> None:
        self._policy, self._prices, self._sessions = policy, prices, sessions
        self._recorder, self._review_queue, self._quota = recorder, review_queue, quota

    async def conclude(
        self, prepared: Prepared, result: LadderResult, cache: CacheStatus
    ) -> DecisionRecord:
        """The session floor, the review lane, then the decision record, committed before the
        caller sees the answer's last chunk (raises DecisionLogError, a 503, when it can't)."""
        trace, session = prepared.trace, prepared.session_id
        if session:
            floor = await self._sessions.floor(session)
            raised = raised_floor(self._policy.tiers, floor, result.tiers_tried)
            if raised is not None and raised != floor:
                await self._sessions.set_floor(session, raised)
        review_id = None
        if result.outcome is Outcome.HUMAN_REVIEW and self._review_queue is not None:
            item = review_item(
                trace, result, prepared.generation_request.messages, self._policy.log_prompts
            )
            review_id = await asyncio.to_thread(self._review_queue.submit, item)
        record = trace.record(
            self._policy,
            self._prices,
            steps=result.steps,
            outcome=result.outcome,
            answered_by=result.answered_by,
            confidence=result.confidence,
            cache=cache,
            review_id=review_id,
        )
        record = await self.persist(record, trace.ladder.callers_schema)
        await self._charge(prepared, record)
        return record

    async def persist(self, record: DecisionRecord, callers_schema: bool = False) -> DecisionRecord:
        """Writes ``record`` as the policy keeps records; returns it as it was, for the
        caller's response. ``callers_schema``: the request sent its own schema."""
        if self._recorder is not None:
            kept = kept_record(record, self._policy.log_prompts, callers_schema)
            await self._recorder.record(kept)
        return record

    async def client_closed(
        self, prepared: Prepared, started: AnswerStarted, partial: Step | None
    ) -> None:
        """The record of a stream whose client left: the steps before and the partial one."""
        steps: Sequence[Step] = [*started.steps_before, *([partial] if partial else [])]
        record = prepared.trace.record(
            self._policy,
            self._prices,
            steps=steps,
            outcome=Outcome.CLIENT_CLOSED,
            answered_by=started.answered_by,
            confidence=0.0,
            cache="bypass",
        )
        try:
            await self.persist(record, prepared.trace.ladder.callers_schema)
            await self._charge(prepared, record)
        except DecisionLogError as error:
            _log.warning("request %s: client_closed record lost: %s", record.request_id, error)

    async def _charge(self, prepared: Prepared, record: DecisionRecord) -> None:
        rate = prepared.tenant.rate_limit
        tokens = record.prompt_tokens + record.completion_tokens
        if rate is not None and self._quota is not None and tokens:
            await self._quota.charge(prepared.tenant.id, rate, tokens)
