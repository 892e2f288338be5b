"""Cascade v1: try tiers cheapest first, gate each answer on its confidence, escalate if short.

The loop takes its tiers as :class:`~tierserve.engine.Engine` objects, so the gateway (Serve
handles), unit tests (scripted engines) and offline replay run the very same code.

Streaming: every tier but the last is generated whole, because the gate needs the whole answer.
An accepted early answer is then sent as one chunk; once the cascade reaches the last tier, that
tier streams token by token (there is nothing left to gate against). So a streamed request
reports the answering tier before its first byte, but its time to first token includes the
non-streamed attempts of the cheaper tiers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace

from tierserve.engine.types import Engine, Generation, GenerationRequest
from tierserve.errors import TierserveError, TierTimeoutError, TierUnavailableError
from tierserve.policy.gate import Outcome, Verdict, gate_confidence, gate_failure
from tierserve.signals.confidence import quantile_confidence

__all__ = [
    "AnswerStarted",
    "Cascade",
    "CascadeEvent",
    "CascadeFinished",
    "CascadeResult",
    "LadderStep",
    "StepRecord",
    "TextDelta",
]


def _is_bad_request(error: Exception) -> bool:
    """A request the tier refused as invalid is invalid on every tier: never escalate it."""
    return isinstance(error, TierserveError) and not error.retryable


@dataclass(frozen=True, slots=True)
class LadderStep:
    tier: str
    threshold: float | None
    """Minimum confidence to accept this tier's answer; None on the last step."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What happened at one step, for response metadata and the decision log."""

    tier: str
    outcome: Outcome
    reason: str
    threshold: float | None
    confidence: float | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    latency_s: float = 0.0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CascadeResult:
    generation: Generation
    steps: tuple[StepRecord, ...]

    @property
    def answered_by(self) -> str:
        return self.generation.tier

    @property
    def tiers_tried(self) -> tuple[str, ...]:
        return tuple(step.tier for step in self.steps)

    @property
    def confidence(self) -> float:
        last = self.steps[-1].confidence
        return 0.0 if last is None else last


@dataclass(frozen=True, slots=True)
class AnswerStarted:
    """The tier that will answer is known; the steps that led to it are final."""

    tier: str
    steps_before: tuple[StepRecord, ...]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class CascadeFinished:
    result: CascadeResult


CascadeEvent = AnswerStarted | TextDelta | CascadeFinished


class Cascade:
    def __init__(
        self,
        ladder: Sequence[LadderStep],
        engines: Mapping[str, Engine],
        *,
        confidence_quantile: float,
        tier_timeout_s: float,
    ) -> None:
        if not ladder:
            raise ValueError("a cascade needs at least one step")
        missing = [step.tier for step in ladder if step.tier not in engines]
        if missing:
            raise ValueError(f"no engine for tiers {missing}")
        self._ladder = tuple(ladder)
        self._engines = engines
        self._quantile = confidence_quantile
        self._timeout_s = tier_timeout_s

    def _next_tier(self, index: int) -> str | None:
        return self._ladder[index + 1].tier if index + 1 < len(self._ladder) else None

    def _judge(self, index: int, generation: Generation) -> StepRecord:
        step = self._ladder[index]
        confidence = quantile_confidence(generation.token_logprobs, self._quantile)
        verdict = gate_confidence(step.tier, confidence, step.threshold, self._next_tier(index))
        return StepRecord(
            tier=step.tier,
            outcome=verdict.outcome,
            reason=verdict.reason,
            threshold=step.threshold,
            confidence=confidence,
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            ttft_s=generation.ttft_s,
            latency_s=generation.latency_s,
        )

    def _failure(self, index: int, error: Exception, started: float) -> StepRecord:
        step = self._ladder[index]
        if isinstance(error, TimeoutError | TierTimeoutError):
            failure = f"timeout>{self._timeout_s:g}s"
        else:
            failure = f"error={type(error).__name__}"
        verdict: Verdict = gate_failure(failure, self._next_tier(index))
        record = StepRecord(
            tier=step.tier,
            outcome=verdict.outcome,
            reason=verdict.reason,
            threshold=step.threshold,
            latency_s=time.monotonic() - started,
            error=str(error)[:500],
        )
        if self._next_tier(index) is None:
            raise TierUnavailableError(
                step.tier, f"{failure}: {error}", hint="retry later; check /healthz"
            ) from error
        return record

    def _request_for(self, request: GenerationRequest, tier: str) -> GenerationRequest:
        return replace(request, request_id=f"{request.request_id}-{tier}")

    async def _generate(self, index: int, request: GenerationRequest) -> Generation:
        tier = self._ladder[index].tier
        async with asyncio.timeout(self._timeout_s):
            return await self._engines[tier].generate(self._request_for(request, tier))

    async def _attempt(
        self, index: int, request: GenerationRequest
    ) -> tuple[StepRecord, Generation | None]:
        """One step: generate on the tier and judge it, or record why the tier failed."""
        started = time.monotonic()
        try:
            generation = await self._generate(index, request)
        except Exception as error:
            if _is_bad_request(error):
                raise
            return self._failure(index, error, started), None
        return self._judge(index, generation), generation

    async def run(self, request: GenerationRequest) -> CascadeResult:
        steps: list[StepRecord] = []
        for index in range(len(self._ladder)):
            record, generation = await self._attempt(index, request)
            steps.append(record)
            if generation is not None and record.outcome is Outcome.ACCEPT:
                return CascadeResult(generation=generation, steps=tuple(steps))
        raise AssertionError("the last step always accepts or raises")  # pragma: no cover

    async def stream(self, request: GenerationRequest) -> AsyncIterator[CascadeEvent]:
        steps: list[StepRecord] = []
        for index in range(len(self._ladder) - 1):
            record, generation = await self._attempt(index, request)
            steps.append(record)
            if generation is not None and record.outcome is Outcome.ACCEPT:
                yield AnswerStarted(tier=record.tier, steps_before=tuple(steps[:-1]))
                if generation.text:
                    yield TextDelta(generation.text)
                yield CascadeFinished(CascadeResult(generation=generation, steps=tuple(steps)))
                return
        async for event in self._stream_last(request, steps):
            yield event

    async def _stream_last(
        self, request: GenerationRequest, steps: list[StepRecord]
    ) -> AsyncIterator[CascadeEvent]:
        index = len(self._ladder) - 1
        tier = self._ladder[index].tier
        yield AnswerStarted(tier=tier, steps_before=tuple(steps))
        final: Generation | None = None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                async for chunk in self._engines[tier].stream(self._request_for(request, tier)):
                    if chunk.text:
                        yield TextDelta(chunk.text)
                    if chunk.final is not None:
                        final = chunk.final
        except Exception as error:
            if _is_bad_request(error):
                raise
            self._failure(index, error, started)  # on the last tier: raises TierUnavailableError
        if final is None:
            raise TierUnavailableError(tier, "stream ended without a final generation")
        steps.append(self._judge(index, final))
        yield CascadeFinished(CascadeResult(generation=final, steps=tuple(steps)))
