"""Issue 19, test 5: streams, a tenth of them cancelled by their client after the first
words. No engine request is left running, every cancelled stream is on record as
``client_closed``, and every other stream's text is token-exact with the same request
answered whole."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.conftest import Scale, write_figures
from tierserve.observe.decision_log import DecisionLog, LogQuery

PROMPTS = [
    "Name three colours.",
    "Say hello to the team.",
    "Count from one to five.",
    "Name a fruit that is yellow.",
    "What is two plus two?",
]


LONG = "Write a long story about a lighthouse keeper."
"""What a cancelled stream asks for: 64 tokens, so the client leaves mid-answer."""


def body(prompt: str, *, stream: bool) -> dict[str, Any]:
    long = prompt == LONG
    return {
        "model": "tierserve/small",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64 if long else 24,
        "ignore_eos": long,
        "temperature": 0,
        "stream": stream,
    }


async def whole(client: httpx.AsyncClient, prompt: str) -> str:
    response = await client.post("/v1/chat/completions", json=body(prompt, stream=False))
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


async def streamed(client: httpx.AsyncClient, prompt: str, cancel: bool) -> tuple[str, str, bool]:
    """(text received, request id, whether [DONE] arrived)."""
    parts: list[str] = []
    async with client.stream(
        "POST", "/v1/chat/completions", json=body(prompt, stream=True)
    ) as response:
        assert response.status_code == 200, await response.aread()
        request_id = response.headers["x-tierserve-request-id"]
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                return "".join(parts), request_id, True
            if line.startswith("data: "):
                chunk = json.loads(line.removeprefix("data: "))
                assert "error" not in chunk, chunk
                for choice in chunk.get("choices", []):
                    parts.append(choice["delta"].get("content") or "")
                if cancel and "".join(parts):
                    break  # leaving the block closes the connection mid-answer
    return "".join(parts), request_id, False


async def in_flight(client: httpx.AsyncClient) -> dict[str, int]:
    tiers = (await client.get("/healthz")).json()["tiers"]
    return {name: status["in_flight"] for name, status in tiers.items()}


async def aborted(client: httpx.AsyncClient) -> int:
    tiers = (await client.get("/healthz")).json()["tiers"]
    return sum(int(status["aborted_total"]) for status in tiers.values())


def test_cancelled_streams_leave_no_engine_work_and_the_rest_are_token_exact(
    base_url: str, scale: Scale, results: Path, decision_log: DecisionLog
) -> None:
    started = time.time()

    async def run() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
            reference = {prompt: await whole(client, prompt) for prompt in PROMPTS}
            aborted_before = await aborted(client)
            gate = asyncio.Semaphore(4)  # the small tier's max_ongoing_requests

            async def one(index: int) -> tuple[int, str, str, bool]:
                async with gate:
                    cancel = index % (scale.streams // scale.cancelled) == 0
                    prompt = LONG if cancel else PROMPTS[index % len(PROMPTS)]
                    text, request_id, done = await streamed(client, prompt, cancel)
                    return (
                        index,
                        prompt,
                        request_id,
                        done and not cancel and text == reference[prompt],
                    )

            outcomes = await asyncio.gather(*(one(i) for i in range(scale.streams)))
            cancelled = [o for o in outcomes if o[0] % (scale.streams // scale.cancelled) == 0]
            finished = [o for o in outcomes if o not in cancelled]
            left: dict[str, int] = {}
            for _ in range(30):  # an abort reaches the engine within a scheduler step or two
                left = await in_flight(client)
                if not any(left.values()):
                    break
                await asyncio.sleep(1)
            return {
                "streams": scale.streams,
                "cancelled": len(cancelled),
                "token_exact": sum(1 for o in finished if o[3]),
                "not_exact": [o[1] for o in finished if not o[3]],
                "engine_requests_left": left,
                "engine_aborts": await aborted(client) - aborted_before,
                "cancelled_ids": [o[2] for o in cancelled],
            }

    figures = asyncio.run(run())
    time.sleep(2)  # a client_closed record is written by a task of its own
    records = {r.request_id: r for r in decision_log.query(LogQuery(since=started - 1))}
    closed = [i for i in figures.pop("cancelled_ids") if records.get(i) is not None]
    figures["client_closed_records"] = sum(
        1 for i in closed if records[i].outcome == "client_closed"
    )
    write_figures(results, "cancellation", figures)
    assert not any(figures["engine_requests_left"].values()), figures
    assert figures["token_exact"] == scale.streams - scale.cancelled, figures
    assert figures["client_closed_records"] == scale.cancelled, figures
    assert figures["engine_aborts"] >= scale.cancelled, figures
