"""Running a route's ladder: generate under each step's contract, gate it, escalate if short.

The loop takes its tiers as :class:`~tierserve.engine.Engine` objects, so the gateway (Serve
handles), unit tests (scripted engines) and offline replay run the very same code.

Streaming: the gate needs a whole answer, so a step is streamed token by token only when its
gate cannot reject it (the last generate step, with no threshold, no validators and a route
that accepts its last answer). Every other step is generated whole and, once accepted, sent as
one chunk. A streamed request therefore learns the answering tier before its first byte, and
its time to first token includes the attempts of the cheaper tiers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tierserve.engine.types import ChatMessage, Engine, Generation, GenerationRequest
from tierserve.errors import TierserveError, TierTimeoutError, TierUnavailableError
from tierserve.policy.gate import NextStep, Outcome, Verdict, gate_step
from tierserve.policy.spec import LadderStepSpec
from tierserve.signals.confidence import confidence_signals, quantile_confidence
from tierserve.validate import ValidationContext, run_validators

__all__ = [
    "AnswerStarted",
    "Ladder",
    "LadderFinished",
    "LadderResult",
    "LadderRunner",
    "RunnerEvent",
    "StepRecord",
    "TerminalMessages",
    "TextDelta",
]


def _is_bad_request(error: Exception) -> bool:
    """A request the tier refused as invalid is invalid on every tier: never escalate it."""
    return isinstance(error, TierserveError) and not error.retryable


@dataclass(frozen=True, slots=True)
class Ladder:
    """What one request climbs: the eligible steps and the route's contract around them."""

    steps: tuple[LadderStepSpec, ...]
    on_exhausted: Literal["accept_last", "human_review", "safe_failure"] = "accept_last"
    json_schema: dict[str, Any] | None = None
    schema_name: str | None = None
    instructions: str | None = None
    """System text sent at every step (the schema and how to fill it)."""
    validation: ValidationContext = field(default_factory=ValidationContext)
    review_accepted: bool = False
    """Accepted answers are drafts: the outcome becomes human review, the draft is kept."""


@dataclass(frozen=True, slots=True)
class StepRecord:
    """What happened at one step, for response metadata and the decision log."""

    tier: str | None
    outcome: Outcome
    reason: str
    threshold: float | None = None
    confidence: float | None = None
    validations: tuple[str, ...] = ()
    constrained: bool = False
    max_tokens: int | None = None
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    latency_s: float = 0.0
    validation_s: float = 0.0
    """Time spent scoring confidence and running the validators on the answer."""
    validators: tuple[str, ...] = ()
    extra_context: bool = False
    signals: tuple[tuple[str, float], ...] = ()
    """Confidence features of the answer (see signals.confidence_signals), for offline study."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LadderResult:
    outcome: Outcome
    """ACCEPT, HUMAN_REVIEW or SAFE_FAILURE."""
    text: str
    generation: Generation | None
    steps: tuple[StepRecord, ...]

    @property
    def answered_by(self) -> str:
        if self.outcome is Outcome.ACCEPT and self.generation is not None:
            return self.generation.tier
        return str(self.outcome)

    @property
    def tiers_tried(self) -> tuple[str, ...]:
        return tuple(step.tier for step in self.steps if step.tier is not None)

    @property
    def confidence(self) -> float:
        scored = [s.confidence for s in self.steps if s.confidence is not None]
        return scored[-1] if scored else 0.0


@dataclass(frozen=True, slots=True)
class AnswerStarted:
    """The answer's source is known (a tier or a terminal outcome); earlier steps are final."""

    answered_by: str
    steps_before: tuple[StepRecord, ...]


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class LadderFinished:
    result: LadderResult


RunnerEvent = AnswerStarted | TextDelta | LadderFinished


@dataclass(frozen=True, slots=True)
class TerminalMessages:
    human_review: str
    safe_failure: str


class LadderRunner:
    def __init__(
        self,
        engines: Mapping[str, Engine],
        *,
        confidence_quantile: float,
        tier_timeout_s: float,
        messages: TerminalMessages,
    ) -> None:
        self._engines = engines
        self._quantile = confidence_quantile
        self._timeout_s = tier_timeout_s
        self._messages = messages

    # -- the contract of a step ---------------------------------------------------------

    @staticmethod
    def _next(ladder: Ladder, index: int) -> NextStep:
        if index + 1 < len(ladder.steps):
            following = ladder.steps[index + 1]
            if following.action == "generate":
                return NextStep("tier", following.tier)
            return NextStep(following.action)
        return NextStep(ladder.on_exhausted)

    @staticmethod
    def _request_for(
        ladder: Ladder, step: LadderStepSpec, request: GenerationRequest
    ) -> GenerationRequest:
        assert step.tier is not None
        messages = request.messages
        system = "\n".join(t for t in (ladder.instructions, step.extra_context) if t)
        if system:
            messages = (ChatMessage("system", system), *messages)
        return replace(
            request,
            request_id=f"{request.request_id}-{step.tier}",
            messages=messages,
            max_tokens=step.max_tokens or request.max_tokens,
            json_schema=ladder.json_schema if step.constrained else None,
        )

    def _streams_live(self, ladder: Ladder, index: int) -> bool:
        step = ladder.steps[index]
        return (
            index == len(ladder.steps) - 1
            and ladder.on_exhausted == "accept_last"
            and not ladder.review_accepted
            and step.min_confidence is None
            and not step.validators
        )

    def _terminal(self, outcome: Outcome) -> str:
        if outcome is Outcome.HUMAN_REVIEW:
            return self._messages.human_review
        return self._messages.safe_failure

    # -- one step -------------------------------------------------------------------------

    @staticmethod
    def _record(step: LadderStepSpec, verdict: Verdict, **measured: Any) -> StepRecord:
        """A step's record: its contract and verdict, plus what was measured."""
        return StepRecord(
            tier=step.tier,
            outcome=verdict.outcome,
            reason=verdict.reason,
            threshold=step.min_confidence,
            constrained=step.constrained,
            max_tokens=step.max_tokens,
            validators=tuple(step.validators),
            extra_context=bool(step.extra_context),
            **measured,
        )

    def _judge(self, ladder: Ladder, index: int, generation: Generation) -> StepRecord:
        step = ladder.steps[index]
        assert step.tier is not None
        started = time.monotonic()
        confidence = quantile_confidence(generation.token_logprobs, self._quantile)
        validations = run_validators(step.validators, generation.text, ladder.validation)
        verdict = gate_step(
            step.tier, confidence, step.min_confidence, validations, self._next(ladder, index)
        )
        validation_s = time.monotonic() - started
        return self._record(
            step,
            verdict,
            confidence=confidence,
            validations=tuple(v.code for v in validations),
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            ttft_s=generation.ttft_s,
            latency_s=generation.latency_s,
            validation_s=validation_s,
            signals=tuple(confidence_signals(generation.token_logprobs).items()),
        )

    def _failure(self, ladder: Ladder, index: int, error: Exception, started: float) -> StepRecord:
        step = ladder.steps[index]
        assert step.tier is not None
        if isinstance(error, TimeoutError | TierTimeoutError):
            failure = f"timeout>{self._timeout_s:g}s"
        else:
            failure = f"error={type(error).__name__}"
        next_step = self._next(ladder, index)
        if next_step.kind == "accept_last":
            # No answer to accept and nothing left to try: a retryable 503, not a fake answer.
            raise TierUnavailableError(
                step.tier, f"{failure}: {error}", hint="retry later; check /healthz"
            ) from error
        verdict: Verdict = next_step.verdict(failure)
        return self._record(
            step,
            verdict,
            latency_s=time.monotonic() - started,
            error=str(error)[:500],
        )

    async def _attempt(
        self, ladder: Ladder, index: int, request: GenerationRequest
    ) -> tuple[StepRecord, Generation | None]:
        step = ladder.steps[index]
        assert step.tier is not None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                generation = await self._engines[step.tier].generate(
                    self._request_for(ladder, step, request)
                )
        except Exception as error:
            if _is_bad_request(error):
                raise
            return self._failure(ladder, index, error, started), None
        return self._judge(ladder, index, generation), generation

    # -- the ladder -----------------------------------------------------------------------

    async def run(self, ladder: Ladder, request: GenerationRequest) -> LadderResult:
        events = [event async for event in self._events(ladder, request, live=False)]
        finished = events[-1]
        assert isinstance(finished, LadderFinished)
        return finished.result

    def stream(self, ladder: Ladder, request: GenerationRequest) -> AsyncIterator[RunnerEvent]:
        return self._events(ladder, request, live=True)

    async def _events(
        self, ladder: Ladder, request: GenerationRequest, *, live: bool
    ) -> AsyncIterator[RunnerEvent]:
        steps: list[StepRecord] = []
        for index, step in enumerate(ladder.steps):
            if step.action != "generate":
                outcome = Outcome(step.action)
                steps.append(StepRecord(None, outcome, f"ladder => {step.action}"))
                async for event in self._finish(outcome, None, steps):
                    yield event
                return
            if live and self._streams_live(ladder, index):
                async for event in self._stream_step(ladder, index, request, steps):
                    yield event
                return
            record, generation = await self._attempt(ladder, index, request)
            steps.append(record)
            if record.outcome is not Outcome.ESCALATE:
                outcome = record.outcome
                if outcome is Outcome.ACCEPT and ladder.review_accepted:
                    outcome = Outcome.HUMAN_REVIEW
                    steps.append(StepRecord(None, outcome, "route requires review => human_review"))
                async for event in self._finish(outcome, generation, steps):
                    yield event
                return
        raise AssertionError("a ladder always ends in an outcome")  # pragma: no cover

    async def _finish(
        self, outcome: Outcome, generation: Generation | None, steps: list[StepRecord]
    ) -> AsyncIterator[RunnerEvent]:
        if outcome is Outcome.ACCEPT and generation is not None:
            text, source = generation.text, generation.tier
        else:
            outcome = Outcome.SAFE_FAILURE if outcome is Outcome.ACCEPT else outcome
            text, source = self._terminal(outcome), str(outcome)
            if outcome is not Outcome.HUMAN_REVIEW:
                generation = None  # a human-review lane keeps the draft for the reviewer
        yield AnswerStarted(answered_by=source, steps_before=tuple(steps[:-1]))
        if text:
            yield TextDelta(text)
        yield LadderFinished(LadderResult(outcome, text, generation, tuple(steps)))

    async def _stream_step(
        self,
        ladder: Ladder,
        index: int,
        request: GenerationRequest,
        steps: list[StepRecord],
    ) -> AsyncIterator[RunnerEvent]:
        step = ladder.steps[index]
        assert step.tier is not None
        yield AnswerStarted(answered_by=step.tier, steps_before=tuple(steps))
        final: Generation | None = None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._timeout_s):
                engine = self._engines[step.tier]
                async for chunk in engine.stream(self._request_for(ladder, step, request)):
                    if chunk.text:
                        yield TextDelta(chunk.text)
                    if chunk.final is not None:
                        final = chunk.final
        except Exception as error:
            if _is_bad_request(error):
                raise
            self._failure(ladder, index, error, started)  # the last step: raises a 503 error
        if final is None:
            raise TierUnavailableError(step.tier, "stream ended without a final generation")
        steps.append(self._judge(ladder, index, final))
        yield LadderFinished(LadderResult(Outcome.ACCEPT, final.text, final, tuple(steps)))
