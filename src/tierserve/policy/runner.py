"""Serving a ladder: generate under each step's contract and let the kernel decide what next.

The loop takes its tiers as :class:`~tierserve.engine.Engine` objects (Serve handles in the
gateway, scripted engines in unit tests); what happens after each step is decided by
:class:`tierserve.policy.ladder.LadderWalk`, the same walk replay and the sweeps take.

Streaming: the gate needs a whole answer, so a step is streamed token by token only when its
gate cannot reject it (:func:`~tierserve.policy.ladder.gate_cannot_reject`). Every other step
is generated whole and, once accepted, sent as one chunk. A streamed request therefore learns
the answering tier before its first byte, and its time to first token includes the attempts of
the cheaper tiers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tierserve.engine.types import (
    ChatMessage,
    Engine,
    Generation,
    GenerationRequest,
    TokenLogprob,
    ToolCall,
)
from tierserve.errors import (
    CircuitOpenError,
    ContextLengthError,
    TierBusyError,
    TierserveError,
    TierTimeoutError,
    TierUnavailableError,
)
from tierserve.policy.breaker import CircuitBreakers
from tierserve.policy.ladder import (
    Answer,
    Failure,
    Finish,
    Ladder,
    LadderWalk,
    NoAnswer,
    Verdict,
    gate_cannot_reject,
)
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome, Step
from tierserve.signals.confidence import confidence_signals, quantile_confidence
from tierserve.signals.fields import FieldReading, read_fields
from tierserve.signals.value_kinds import value_kinds
from tierserve.validate import Output, ProposedCall, run_validators

__all__ = [
    "AnswerStarted",
    "LadderFinished",
    "LadderResult",
    "LadderRunner",
    "RunnerEvent",
    "TerminalMessages",
    "TextDelta",
    "step_of",
]


@dataclass(frozen=True, slots=True)
class LadderResult:
    outcome: Outcome
    """ACCEPT, HUMAN_REVIEW or SAFE_FAILURE."""
    text: str
    generation: Generation | None
    """The accepted answer, or the draft a human reviewer gets."""
    steps: tuple[Step, ...]

    @property
    def accepted(self) -> Generation | None:
        """The answer the caller gets; None for a terminal message (a human-review draft is
        the reviewer's, never the caller's: not its text, calls or log-probabilities)."""
        return self.generation if self.outcome is Outcome.ACCEPT else None

    @property
    def answered_by(self) -> str | None:
        """The tier whose answer is returned; None for a terminal message."""
        return self.accepted.tier if self.accepted is not None else None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.accepted.tool_calls if self.accepted is not None else ()

    @property
    def finish_reason(self) -> str:
        if self.tool_calls:
            return "tool_calls"
        return self.generation.finish_reason if self.generation else "stop"

    @property
    def tiers_tried(self) -> tuple[str, ...]:
        return tuple(step.tier for step in self.steps if step.tier is not None)

    @property
    def confidence(self) -> float:
        scored = [s.confidence for s in self.steps if s.confidence is not None]
        return scored[-1] if scored else 0.0


@dataclass(frozen=True, slots=True)
class AnswerStarted:
    """The answer's source is known (a tier, or None: a terminal outcome's message); earlier
    steps are final."""

    answered_by: str | None
    steps_before: tuple[Step, ...]
    outcome: Outcome | None = None
    """A terminal outcome's, known before its message is sent; None while a tier answers."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str
    tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    """The tokens of ``text``, when the caller asked for log-probabilities."""


@dataclass(frozen=True, slots=True)
class LadderFinished:
    result: LadderResult


RunnerEvent = AnswerStarted | TextDelta | LadderFinished


@dataclass(frozen=True, slots=True)
class TerminalMessages:
    human_review: str
    safe_failure: str


def output_of(generation: Generation) -> Output:
    calls = tuple(ProposedCall(c.name, c.arguments) for c in generation.tool_calls)
    return Output(generation.text, calls, generation.unreadable_tool_call)


def step_of(spec: LadderStepSpec | None, verdict: Verdict, **measured: Any) -> Step:
    """A step: its contract (``spec``; None for a terminal action), verdict and measurements."""
    contract: dict[str, Any] = {}
    if spec is not None:
        contract = {
            "tier": spec.tier,
            "threshold": spec.min_confidence,
            "constrained": spec.constrained,
            "max_tokens": spec.max_tokens,
            "validators": tuple(spec.validators),
            "extra_context": bool(spec.extra_context),
            "min_field_confidence": spec.min_field_confidence,
        }
    return Step(
        tier=contract.pop("tier", None),
        outcome=verdict.outcome,
        reason=verdict.reason,
        why=verdict.why,
        failure=verdict.failure,
        failed_validators=verdict.failed_validators,
        uncertain_fields=verdict.uncertain_fields,
        **contract,
        **measured,
    )


def _failure(error: Exception, timeout_code: str) -> Failure:
    if isinstance(error, TimeoutError | TierTimeoutError):
        return Failure(FailureKind.TIMEOUT, timeout_code)
    if isinstance(error, ContextLengthError):
        return Failure(FailureKind.CONTEXT_LENGTH, f"context>{error.limit}")
    if isinstance(error, CircuitOpenError):
        return Failure(FailureKind.ERROR, "circuit_open")
    return Failure(FailureKind.ERROR, f"error={type(error).__name__}")


async def _close(chunks: AsyncIterator[Any]) -> None:
    """Stop a tier's stream (its replica aborts the engine request when it is closed)."""
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()


def _inside(error: Exception) -> str:
    """The operator's view of a failure (the decision log's step error), fuller than the
    caller's error message."""
    return getattr(error, "detail", "") or str(error)


def _escalates(error: Exception) -> bool:
    """A request a tier refused as invalid is invalid on every tier, unless it is only too long
    for this tier's context window, which a later tier may have room for."""
    if isinstance(error, ContextLengthError):
        return True
    return not (isinstance(error, TierserveError) and not error.retryable)


def _tier_fault(error: Exception) -> bool:
    """A failure of the tier itself (it timed out, or is down), which counts against its
    circuit; a full queue is load and a refused request is the caller's."""
    if isinstance(error, TierBusyError | CircuitOpenError):
        return False
    return isinstance(error, TimeoutError | TierTimeoutError | TierUnavailableError)


class LadderRunner:
    def __init__(
        self,
        engines: Mapping[str, Engine],
        *,
        confidence_quantile: float,
        tier_timeout_s: float,
        messages: TerminalMessages,
        request_deadline_s: float | None = None,
        breakers: CircuitBreakers | None = None,
    ) -> None:
        self._engines = engines
        self._quantile = confidence_quantile
        self._timeout_s = tier_timeout_s
        self._deadline_s = request_deadline_s
        self._messages = messages
        self._breakers = breakers

    def _closed(self, tier: str) -> None:
        """Raises CircuitOpenError when ``tier``'s circuit is open."""
        if self._breakers is not None and not self._breakers.allows(tier):
            raise CircuitOpenError(tier, self._breakers.threshold)

    def _tier_answered(self, tier: str, error: Exception | None) -> None:
        if self._breakers is None:
            return
        if error is None:
            self._breakers.succeeded(tier)
        elif _tier_fault(error):
            self._breakers.failed(tier)

    def _deadline(self) -> float:
        return time.monotonic() + (self._deadline_s or float("inf"))

    def _budget(self, deadline: float) -> tuple[float, str]:
        """The seconds this step may take (its tier timeout, or what is left of the whole
        request's deadline, whichever is less), and the reason code when they run out."""
        left = deadline - time.monotonic()
        if left < self._timeout_s:
            return max(left, 0.0), f"deadline>{self._deadline_s:g}s"
        return self._timeout_s, f"timeout>{self._timeout_s:g}s"

    @staticmethod
    def _request_for(
        ladder: Ladder, step: LadderStepSpec, request: GenerationRequest
    ) -> GenerationRequest:
        assert step.tier is not None
        messages = request.messages
        system = "\n".join(t for t in (ladder.instructions, step.extra_context) if t)
        if system:
            messages = (ChatMessage("system", system), *messages)
        max_tokens = step.max_tokens or request.max_tokens
        return replace(
            request,
            request_id=f"{request.request_id}-{step.tier}",
            messages=messages,
            max_tokens=max_tokens,
            # A step's budget may be below what the caller asked at least: it bounds both.
            min_tokens=None if request.min_tokens is None else min(request.min_tokens, max_tokens),
            json_schema=ladder.json_schema if step.constrained else None,
        )

    # -- one step -------------------------------------------------------------------------

    def _judge(self, walk: LadderWalk, generation: Generation) -> Step:
        """The current step's answer observed: the walk moves on; the step as recorded."""
        ladder, move = walk.ladder, walk.next_step
        assert move is not None
        spec, doubted = ladder.steps[move.index], move.doubted
        started = time.monotonic()
        confidence = quantile_confidence(generation.token_logprobs, self._quantile)
        validations = run_validators(spec.validators, output_of(generation), ladder.validation)
        fields: tuple[FieldReading, ...] = ()
        if ladder.json_schema is not None:
            fields = read_fields(
                generation.text,
                generation.token_logprobs,
                generation.token_spans,
                value_kinds(ladder.json_schema),
            )
        verdict = walk.observe(Answer(confidence, validations, fields))
        return step_of(
            spec,
            verdict,
            confidence=confidence,
            validations=validations,
            model=generation.model,
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            ttft_s=generation.ttft_s,
            latency_s=generation.latency_s,
            validation_s=time.monotonic() - started,
            signals=confidence_signals(generation.token_logprobs),
            fields=fields,
            second_opinion=bool(doubted) and spec.accept_on_agreement,
        )

    def _failed(
        self, walk: LadderWalk, error: Exception, started: float, timeout_code: str
    ) -> Step:
        """The current step's tier gave no answer: the walk moves on (or, with nothing left to
        try, the request fails with a retryable error); the step as recorded."""
        move = walk.next_step
        assert move is not None
        spec = walk.ladder.steps[move.index]
        assert spec.tier is not None
        failure = _failure(error, timeout_code)
        verdict = walk.observe(failure)
        if isinstance(walk.move, NoAnswer):
            if isinstance(error, ContextLengthError):
                raise error  # no tier left with room for it: a 400 naming the limit
            # No answer to accept and nothing left to try: retryable, never a fake answer; a
            # 504 when time ran out, else a 503.
            timed_out = failure.kind is FailureKind.TIMEOUT
            raise (TierTimeoutError if timed_out else TierUnavailableError)(
                spec.tier,
                "no tier answered in time" if timed_out else "no tier could answer",
                hint="retry later; check /healthz",
                detail=f"{failure.detail}: {_inside(error)}"[:500],
            ) from error
        return step_of(
            spec,
            verdict,
            latency_s=time.monotonic() - started,
            error=_inside(error)[:500],
            failure_code=failure.detail,
        )

    async def _attempt(
        self, walk: LadderWalk, request: GenerationRequest, deadline: float
    ) -> tuple[Step, Generation | None]:
        ladder, move = walk.ladder, walk.next_step
        assert move is not None
        spec = ladder.steps[move.index]
        assert spec.tier is not None
        started = time.monotonic()
        budget, timeout_code = self._budget(deadline)
        try:
            if budget <= 0:
                raise TimeoutError  # the deadline has passed: do not start the tier at all
            self._closed(spec.tier)
            async with asyncio.timeout(budget):
                generation = await self._engines[spec.tier].generate(
                    self._request_for(ladder, spec, request)
                )
        except Exception as error:
            self._tier_answered(spec.tier, error)
            if not _escalates(error):
                raise
            return self._failed(walk, error, started, timeout_code), None
        self._tier_answered(spec.tier, None)
        return self._judge(walk, generation), generation

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
        steps: list[Step] = []
        answers: dict[int, Generation] = {}
        deadline = self._deadline()
        walk = LadderWalk(ladder)
        while (move := walk.next_step) is not None:
            index = move.index
            if live and gate_cannot_reject(ladder, index):
                async for event in self._stream_step(walk, request, steps, deadline):
                    yield event
                return
            step, generation = await self._attempt(walk, request, deadline)
            steps.append(step)
            if generation is not None:
                answers[index] = generation
        end = walk.end
        assert isinstance(end, Finish)  # NoAnswer raises in _failed
        if end.note is not None:
            steps.append(step_of(None, end.note))
        generation = None if end.answer is None else answers[end.answer]
        async for event in self._finish(end.outcome, generation, steps):
            yield event

    def _terminal(self, outcome: Outcome) -> str:
        if outcome is Outcome.HUMAN_REVIEW:
            return self._messages.human_review
        return self._messages.safe_failure

    async def _finish(
        self, outcome: Outcome, generation: Generation | None, steps: list[Step]
    ) -> AsyncIterator[RunnerEvent]:
        if outcome is Outcome.ACCEPT and generation is not None:
            source: str | None = generation.tier
            text, tokens, logprobs = (
                generation.text,
                generation.completion_tokens,
                generation.logprobs,
            )
        else:
            text, source, tokens, logprobs = self._terminal(outcome), None, 0, ()
        terminal = None if source is not None else outcome
        yield AnswerStarted(answered_by=source, steps_before=tuple(steps[:-1]), outcome=terminal)
        if text:
            yield TextDelta(text, tokens, logprobs)
        yield LadderFinished(LadderResult(outcome, text, generation, tuple(steps)))

    async def _stream_step(
        self,
        walk: LadderWalk,
        request: GenerationRequest,
        steps: list[Step],
        deadline: float,
    ) -> AsyncIterator[RunnerEvent]:
        """The last step, streamed live: its gate cannot reject the answer."""
        ladder, move = walk.ladder, walk.next_step
        assert move is not None
        spec = ladder.steps[move.index]
        assert spec.tier is not None
        yield AnswerStarted(answered_by=spec.tier, steps_before=tuple(steps))
        final: Generation | None = None
        started = time.monotonic()
        budget, timeout_code = self._budget(deadline)
        ends = time.monotonic() + budget
        engine = self._engines[spec.tier]
        try:
            self._closed(spec.tier)
        except CircuitOpenError as error:
            self._failed(walk, error, started, timeout_code)  # the last step: raises
        chunks = aiter(engine.stream(self._request_for(ladder, spec, request)))
        try:
            # A deadline per chunk, not ``asyncio.timeout``: this generator is started in the
            # request handler's task and finished in the response's, and a timeout scope must
            # not span tasks (it would cancel the wrong one).
            while True:
                left = ends - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                try:
                    chunk = await asyncio.wait_for(anext(chunks), left)
                except StopAsyncIteration:
                    break
                if chunk.text:
                    yield TextDelta(chunk.text, chunk.tokens, chunk.logprobs)
                if chunk.final is not None:
                    final = chunk.final
        except Exception as error:
            self._tier_answered(spec.tier, error)
            if not _escalates(error):
                raise
            self._failed(walk, error, started, timeout_code)  # the last step: raises
        finally:
            await _close(chunks)
        self._tier_answered(spec.tier, None)
        if final is None:
            raise TierUnavailableError(spec.tier, "stream ended without a final generation")
        step = self._judge(walk, final)
        assert isinstance(walk.move, Finish) and walk.move.outcome is Outcome.ACCEPT
        steps.append(step)
        yield LadderFinished(LadderResult(Outcome.ACCEPT, final.text, final, tuple(steps)))
