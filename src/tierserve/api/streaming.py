"""A streamed answer: the ladder's events as OpenAI chunks, and what a client that leaves
early leaves behind (the step of the tier that was streaming, its tokens counted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from tierserve.api.protocol import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    TierserveMetadata,
    Usage,
)
from tierserve.observe.decision_record import DecisionRecord
from tierserve.policy.runner import AnswerStarted, LadderFinished, LadderResult, TextDelta
from tierserve.policy.step import Outcome, Step

__all__ = ["answer_chunks", "client_closed_step", "prepend"]


async def answer_chunks(
    request: ChatCompletionRequest,
    request_id: str,
    started: AnswerStarted,
    events: AsyncIterator[Any],
    *,
    conclude: Callable[[LadderResult], Awaitable[DecisionRecord]],
    metadata: Callable[[DecisionRecord], TierserveMetadata],
    client_left: Callable[[Step | None], None],
) -> AsyncIterator[ChatCompletionChunk]:
    """``conclude``: records the finished ladder (before the last chunk is sent);
    ``client_left``: called with the partial step when the client leaves before the end."""
    include_usage = bool(request.stream_options and request.stream_options.include_usage)
    created = int(time.time())
    role: Literal["assistant"] | None = "assistant"
    tokens_sent, chars_sent, finished = 0, 0, False
    began = time.monotonic()

    def chunk(*choices: ChunkChoice, **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=request_id, created=created, model=request.model, choices=list(choices), **extra
        )

    try:
        async for event in events:
            if isinstance(event, TextDelta):
                tokens_sent += event.tokens
                chars_sent += len(event.text)
                logprobs = ChoiceLogprobs.of(event.logprobs) if request.logprobs else None
                yield chunk(
                    ChunkChoice(delta=Delta(role=role, content=event.text), logprobs=logprobs)
                )
                role = None
            elif isinstance(event, LadderFinished):
                finished = True
                result = event.result
                record = await conclude(result)
                if result.tool_calls:
                    yield chunk(ChunkChoice(delta=Delta.calls(result.tool_calls, role)))
                    role = None
                finish = ChunkChoice(delta=Delta(role=role), finish_reason=result.finish_reason)
                yield chunk(finish, tierserve=metadata(record))
                if include_usage:
                    yield chunk(usage=Usage.of(record))
    except (GeneratorExit, asyncio.CancelledError):
        if not finished:
            client_left(client_closed_step(started, tokens_sent, chars_sent, began))
        raise


def client_closed_step(
    started: AnswerStarted, tokens: int, chars: int, began: float
) -> Step | None:
    """The step of the tier whose answer was streaming when the client left (None when the
    answer was a terminal outcome's message)."""
    if started.answered_by is None:
        return None
    return Step(
        tier=started.answered_by,
        outcome=Outcome.CLIENT_CLOSED,
        reason=f"client_closed after {tokens} tokens ({chars} characters) sent",
        completion_tokens=tokens,
        latency_s=time.monotonic() - began,
    )


async def prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event
