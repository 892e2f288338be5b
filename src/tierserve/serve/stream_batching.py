"""Batching a tier's streamed chunks for the trip from its replica to the gateway.

Each chunk a replica yields is one Ray object sent to the gateway; at one token per chunk that
cost grows with throughput, not with answers. Like Ray Serve LLM's stream batcher, the first
text goes out at once (time to first token is untouched) and later texts are merged with what
arrived while the previous batch was being sent. The end of the answer is never held back: the
wait for more ends when the final chunk (or an error) arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tierserve.engine.types import GenerationChunk, TokenLogprob

__all__ = ["batched_chunks"]

_END = object()


async def batched_chunks(
    chunks: AsyncIterator[GenerationChunk], *, interval_s: float = 0.0
) -> AsyncIterator[GenerationChunk]:
    """``chunks`` merged: every batch is the texts that were ready (waiting at most
    ``interval_s`` for more); the final chunk, with the finished generation, ends the last one.
    Closing the result cancels the source, so a client that leaves frees the engine."""
    queue: asyncio.Queue[GenerationChunk | BaseException | object] = asyncio.Queue()
    ending = asyncio.Event()

    async def pump() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
                if chunk.final is not None:
                    ending.set()
        except Exception as error:  # handed to the consumer, which raises it
            await queue.put(error)
        await queue.put(_END)
        ending.set()

    producer = asyncio.create_task(pump())
    try:
        ended, first = False, True
        while not ended:
            items = [await queue.get()]
            if interval_s > 0 and not first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ending.wait(), interval_s)
            while not queue.empty():
                items.append(queue.get_nowait())
            texts: list[str] = []
            logprobs: list[TokenLogprob] = []
            final, tokens = None, 0
            for item in items:
                if item is _END:
                    ended = True
                elif isinstance(item, BaseException):
                    raise item
                elif isinstance(item, GenerationChunk):
                    texts.append(item.text)
                    logprobs.extend(item.logprobs)
                    tokens += item.tokens
                    final = item.final or final
            if texts:
                first = False
                yield GenerationChunk(
                    text="".join(texts), final=final, tokens=tokens, logprobs=tuple(logprobs)
                )
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer
