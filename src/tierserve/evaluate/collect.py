"""``tierserve eval collect``: run every tier of a running stack over a task set and write
outcome rows (quality by the task's checker, cost, latency, tokens, confidence signals).

Each tier is pinned (``model=tierserve/<tier>``) and asked for a fresh answer
(``Cache-Control: no-cache``); the row is appended once every tier has answered, so an
interrupted run resumes where it stopped. ``concurrency`` items are asked at once, so each
tier's engine batches them: on CPU this is most of the speed. The requests are asyncio tasks so
that Ctrl-C cancels the ones in flight at once (their connections close, the stack aborts them)
instead of waiting minutes for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tierserve.errors import TierserveError
from tierserve.evaluate.importers import stable_split
from tierserve.evaluate.outcomes import Labels, OutcomeRow, TierOutcome
from tierserve.evaluate.tasks import TaskItem, check
from tierserve.model_names import pinned_model, split_model
from tierserve.policy.step import Step

__all__ = ["ask_pinned", "collect", "served_tiers"]


async def served_tiers(client: httpx.AsyncClient) -> tuple[str, list[str]]:
    """(the cascade's model name, the tiers that can be pinned), from ``GET /v1/models``."""
    try:
        models = (await client.get("/v1/models")).json()["data"]
    except httpx.TransportError as error:
        raise TierserveError(
            f"cannot reach the stack at {client.base_url}: {type(error).__name__}: {error}",
            hint="start it (`make serve`) or pass --url; wait for /healthz to answer",
        ) from error
    names = [split_model(m["id"]) for m in models]
    cascade = next(base for base, tier in names if tier is None)
    return cascade, [tier for _, tier in names if tier is not None]


async def ask_pinned(
    client: httpx.AsyncClient, request: dict[str, Any], tier: str, about: str
) -> tuple[dict[str, Any], Step, str]:
    """One uncached answer from a pinned tier: the response, its step and its text. Errors
    name the tier and ``about`` (what was asked) and say that finished work is kept."""
    try:
        response = await client.post(
            "/v1/chat/completions", json=request, headers={"Cache-Control": "no-cache"}
        )
    except httpx.TransportError as error:
        raise TierserveError(
            f"lost the stack at {client.base_url} asking tier {tier!r} about {about}: "
            f"{type(error).__name__}: {error}",
            hint="check that the stack is up (/healthz) and rerun; finished work is kept",
        ) from error
    if response.status_code != 200:
        raise TierserveError(
            f"tier {tier!r} refused {about}: {response.status_code} {response.text[:300]}",
            hint="check the stack (/healthz) and rerun; finished work is kept",
        )
    body: dict[str, Any] = response.json()
    step = Step.model_validate(body["tierserve"]["steps"][0])
    return body, step, body["choices"][0]["message"]["content"] or ""


async def _ask(
    client: httpx.AsyncClient, model: str, tier: str, item: TaskItem, max_tokens: int
) -> TierOutcome:
    request: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": item.prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "metadata": {"task": item.task},
    }
    if item.json_schema is not None:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": item.checker, "schema": item.json_schema},
        }
    body, step, answer = await ask_pinned(client, request, tier, item.id)
    meta = body["tierserve"]
    schema_checks = [v.passed for v in step.validations if v.name == "schema"]
    return TierOutcome(
        quality=check(item.checker, item.expected, answer),
        cost=meta["cost_usd"],
        latency_s=step.latency_s,
        prompt_tokens=step.prompt_tokens,
        completion_tokens=step.completion_tokens,
        signals=step.signals,
        answer=answer,
        valid_schema=schema_checks[0] if schema_checks else None,
        model=step.model,
    )


@dataclass(frozen=True, slots=True)
class _Run:
    source: str
    max_tokens: int
    test_fraction: float
    concurrency: int
    progress: bool


async def _row(
    client: httpx.AsyncClient, cascade: str, tiers: list[str], item: TaskItem, run: _Run
) -> OutcomeRow:
    outcomes = {
        tier: await _ask(client, pinned_model(cascade, tier), tier, item, run.max_tokens)
        for tier in tiers
    }
    return OutcomeRow(
        id=item.id,
        prompt=item.prompt,
        split=stable_split(item.id, run.test_fraction),
        labels=Labels(
            task=item.task,
            expected=item.expected,
            checker=item.checker,
            structured=item.json_schema is not None,
            source=run.source,
            kind=item.kind,
        ),
        outcomes=outcomes,
    )


def collect(
    url: str,
    items: Sequence[TaskItem],
    out: Path,
    *,
    source: str,
    max_tokens: int = 256,
    test_fraction: float = 0.5,
    concurrency: int = 1,
    progress: bool = True,
) -> int:
    """Appends a row per item not yet in ``out``; returns how many it added."""
    if concurrency < 1:
        raise TierserveError(
            f"concurrency must be at least 1, got {concurrency}", hint="use --concurrency 4"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        done = {OutcomeRow.model_validate_json(x).id for x in out.read_text().splitlines() if x}
    todo = [item for item in items if item.id not in done]
    run = _Run(source, max_tokens, test_fraction, concurrency, progress)
    return asyncio.run(_collect(url, todo, out, run))


async def _collect(url: str, todo: list[TaskItem], out: Path, run: _Run) -> int:
    from tqdm import tqdm

    slots = asyncio.Semaphore(run.concurrency)  # FIFO: items start in order

    async def row(item: TaskItem) -> OutcomeRow:
        async with slots:
            return await _row(client, cascade, tiers, item, run)

    added = 0
    async with httpx.AsyncClient(base_url=url, timeout=900) as client:
        cascade, tiers = await served_tiers(client)
        pending = [asyncio.create_task(row(item)) for item in todo]
        try:
            # In item order, so reruns give the same file; a slow item holds back at most
            # `concurrency` finished ones.
            for task in tqdm(pending, desc=f"collect {run.source}", disable=not run.progress):
                finished = await task
                with out.open("a") as sink:
                    sink.write(finished.model_dump_json(exclude_none=True) + "\n")
                added += 1
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return added
