"""Batching a tier's stream between its replica and the gateway."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tierserve.engine.types import GenerationChunk
from tierserve.serve.stream_batching import batched_chunks


async def test_the_first_text_goes_out_before_the_engine_produces_more() -> None:
    more = asyncio.Event()

    async def engine() -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk("Hello")
        await more.wait()
        yield GenerationChunk(" world", final=None)

    batches = batched_chunks(engine())
    first = await asyncio.wait_for(anext(batches), timeout=2)
    assert first.text == "Hello"
    more.set()
    assert (await anext(batches)).text == " world"


async def test_the_batching_interval_never_delays_the_first_text() -> None:
    async def engine() -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk("Hello")
        await asyncio.Event().wait()  # nothing more for now
        yield GenerationChunk("never")

    batches = batched_chunks(engine(), interval_s=30.0)
    first = await asyncio.wait_for(anext(batches), timeout=2)
    assert first.text == "Hello"
    await batches.aclose()  # type: ignore[attr-defined]


async def test_texts_that_arrived_together_travel_as_one_chunk_with_the_final() -> None:
    release = asyncio.Event()
    sentinel = object()

    async def engine() -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk("a")
        await release.wait()
        for text in ("b", "c", "d"):
            yield GenerationChunk(text)
        yield GenerationChunk("e", final=sentinel)  # type: ignore[arg-type]

    batches = batched_chunks(engine(), interval_s=0.05)
    assert (await anext(batches)).text == "a"
    release.set()
    rest = [chunk async for chunk in batches]
    assert [c.text for c in rest] == ["bcde"] and rest[0].final is sentinel


async def test_the_last_batch_is_not_held_for_the_interval() -> None:
    release = asyncio.Event()
    generation = object()

    async def engine() -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk("a")
        await release.wait()
        yield GenerationChunk("b")
        await asyncio.sleep(0.01)
        yield GenerationChunk("c", final=generation)  # type: ignore[arg-type]

    batches = batched_chunks(engine(), interval_s=30.0)
    assert (await anext(batches)).text == "a"
    release.set()
    last = await asyncio.wait_for(anext(batches), timeout=2)
    assert last.text == "bc" and last.final is generation


async def test_leaving_the_stream_stops_the_engines_generation() -> None:
    stopped = asyncio.Event()

    async def engine() -> AsyncIterator[GenerationChunk]:
        try:
            while True:
                yield GenerationChunk("x")
                await asyncio.sleep(0.01)
        finally:
            stopped.set()  # VLLMEngine.stream aborts the engine request here

    batches = batched_chunks(engine())
    await anext(batches)
    await batches.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(stopped.wait(), timeout=2)


async def test_an_engine_error_reaches_the_caller() -> None:
    async def engine() -> AsyncIterator[GenerationChunk]:
        yield GenerationChunk("partial")
        raise RuntimeError("engine died")

    batches = batched_chunks(engine())
    with pytest.raises(RuntimeError, match="engine died"):
        async for _ in batches:
            pass
