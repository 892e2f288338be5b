"""Replay that re-runs: the steps a candidate policy needs, generated on the live tiers.

A logged request whose prompt the log kept (``log_prompts: full``, or ``redact`` when the caller
accepts the redacted text) is asked again of each tier the replay needs: pinned
(``model=tierserve/<tier>``), uncached, temperature 0, ``concurrency`` at a time. The tier's
step comes back in the response metadata (confidence, signals, tokens, cost, latency); the
candidate's validators are run here on the answer, against the logged prompt, so the ladder
kernel can judge the step as serving would. Each answer is appended to ``store`` as it
arrives, so an interrupted run resumes where it stopped.

Requests whose prompt was hashed or omitted, structured-output requests (their schema is not
logged) and, unless the caller accepts redacted text, requests whose logged prompt had personal
data redacted are reported as not replayable, never guessed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tierserve.errors import TierserveError
from tierserve.evaluate.collect import ask_pinned, served_tiers
from tierserve.evaluate.importers import stable_split
from tierserve.evaluate.outcomes import Labels, OutcomeRow, TierOutcome
from tierserve.evaluate.replay import Replayed, ReplayScores
from tierserve.evaluate.tasks import TaskItem, check
from tierserve.model_names import pinned_model
from tierserve.observe.decision_record import DecisionRecord
from tierserve.policy.spec import Policy
from tierserve.policy.start_router import PromptEmbedder
from tierserve.policy.step import Step
from tierserve.validate import ValidationContext, run_validators

__all__ = [
    "Regenerated",
    "RegeneratedReplay",
    "regenerate",
    "regenerated_replay",
    "replayable",
]


@dataclass(frozen=True, slots=True)
class Regenerated:
    request_id: str
    tier: str
    step: Step
    answer: str


def replayable(record: DecisionRecord, accept_redacted: bool) -> str | None:
    """None when ``record`` can be asked again, else why not."""
    if record.prompt is None:
        return "prompt not logged (log_prompts hash or omit)"
    if record.pii and not accept_redacted:
        return "prompt logged redacted (pass --accept-redacted to replay the redacted text)"
    if record.output_schema is not None:
        return "structured output (its schema is not in the log)"
    return None


def _load(store: Path) -> dict[tuple[str, str], Regenerated]:
    found: dict[tuple[str, str], Regenerated] = {}
    if not store.exists():
        return found
    for line in store.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            step = Step.model_validate(item["step"])
            found[(item["request_id"], item["tier"])] = Regenerated(
                item["request_id"], item["tier"], step, item["answer"]
            )
    return found


async def _ask(
    client: httpx.AsyncClient,
    cascade: str,
    record: DecisionRecord,
    tier: str,
    max_tokens: int,
    validators: Sequence[str],
    forbidden: Sequence[str],
) -> Regenerated:
    assert record.prompt is not None
    body = {
        "model": pinned_model(cascade, tier),
        "messages": [{"role": "user", "content": record.prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    _, step, answer = await ask_pinned(client, body, tier, record.request_id)
    context = ValidationContext(
        input_text=record.prompt, input_pii=tuple(record.pii), forbidden_phrases=forbidden
    )
    checked = run_validators(validators, answer, context)
    step = step.model_copy(update={"validations": checked, "validators": tuple(validators)})
    return Regenerated(record.request_id, tier, step, answer)


def regenerate(
    url: str,
    jobs: Sequence[tuple[DecisionRecord, Sequence[str]]],
    store: Path,
    *,
    validators: Sequence[str],
    forbidden: Sequence[str] = (),
    max_tokens: int = 256,
    concurrency: int = 4,
) -> dict[tuple[str, str], Regenerated]:
    """Every (record, tier) of ``jobs`` not yet in ``store``, asked of the stack at ``url``;
    returns all of ``store``'s answers."""
    if concurrency < 1:
        raise TierserveError(f"concurrency {concurrency} < 1", hint="use --concurrency 4")
    done = _load(store)
    todo = [(r, t) for r, tiers in jobs for t in tiers if (r.request_id, t) not in done]

    async def run() -> None:
        slots = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=900) as client:
            cascade, served = await served_tiers(client)

            async def one(record: DecisionRecord, tier: str) -> Regenerated:
                async with slots:
                    return await _ask(
                        client, cascade, record, tier, max_tokens, validators, forbidden
                    )

            tasks = [asyncio.create_task(one(r, t)) for r, t in todo if t in served]
            try:
                for task in tasks:
                    found = await task
                    done[(found.request_id, found.tier)] = found
                    with store.open("a") as sink:
                        item = {
                            "request_id": found.request_id,
                            "tier": found.tier,
                            "step": found.step.model_dump(mode="json"),
                            "answer": found.answer,
                        }
                        sink.write(json.dumps(item) + "\n")
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    if todo:
        store.parent.mkdir(parents=True, exist_ok=True)
        asyncio.run(run())
    return done


TEXT_CHECKS = ("non_empty", "grounding", "safety")
"""The checks a replay can run on a regenerated answer from the logged prompt alone."""


@dataclass
class RegeneratedReplay:
    """What ``tierserve eval replay --regenerate`` found, beside :func:`replay`'s report."""

    answers: dict[tuple[str, str], Regenerated]
    not_replayable: dict[str, int]

    def steps(self) -> dict[str, list[Step]]:
        found: dict[str, list[Step]] = {}
        for (request_id, _), item in self.answers.items():
            found.setdefault(request_id, []).append(item.step)
        return found

    def scores(
        self,
        requests: Sequence[Replayed],
        prompts: Mapping[str, str | None],
        labels: Mapping[str, TaskItem],
    ) -> ReplayScores:
        """Both policies' answers checked against the labels, where a label exists.
        ``prompts``: each request id's logged prompt."""
        sides: dict[str, list[float]] = {"before": [], "after": []}
        for request in requests:
            item = labels.get(str(prompts.get(request.request_id)))
            if item is None:
                continue
            got = {}
            for side, answered in (
                ("before", request.answered_before),
                ("after", request.answered_after),
            ):
                found = self.answers.get((request.request_id, answered))
                if answered == "safe_failure":
                    got[side] = 0.0
                elif found is not None:
                    got[side] = check(item.checker, item.expected, found.answer)
            if len(got) == 2:
                for side in sides:
                    sides[side].append(got[side])
        scored = len(sides["before"])
        return ReplayScores(
            labelled_requests=scored,
            quality_before=sum(sides["before"]) / scored if scored else None,
            quality_after=sum(sides["after"]) / scored if scored else None,
        )

    def outcome_rows(
        self,
        records: Sequence[DecisionRecord],
        tiers: Sequence[str],
        labels: Mapping[str, TaskItem],
    ) -> list[OutcomeRow]:
        """Logged requests with a label and an answer from every tier, as outcome rows:
        what ``tierserve eval calibrate`` fits a new policy version on."""
        rows = []
        for record in records:
            item = labels.get(str(record.prompt))
            answers = [self.answers.get((record.request_id, t)) for t in tiers]
            if item is None or record.prompt is None or any(a is None for a in answers):
                continue
            outcomes = {
                tier: TierOutcome(
                    quality=check(item.checker, item.expected, found.answer),
                    cost=found.step.cost_usd,
                    latency_s=found.step.latency_s,
                    prompt_tokens=found.step.prompt_tokens,
                    completion_tokens=found.step.completion_tokens,
                    signals=found.step.signals,
                    answer=found.answer,
                )
                for tier, found in zip(tiers, answers, strict=True)
                if found is not None
            }
            rows.append(
                OutcomeRow(
                    id=record.request_id,
                    prompt=record.prompt,
                    split=stable_split(record.prompt),
                    labels=Labels(
                        task=record.task,
                        expected=item.expected,
                        checker=item.checker,
                        source="replay",
                        kind=item.kind,
                    ),
                    outcomes=outcomes,
                )
            )
        return rows


def regenerated_replay(
    policy: Policy,
    records: Sequence[DecisionRecord],
    url: str,
    store: Path,
    *,
    every_tier: bool,
    accept_redacted: bool = False,
    max_tokens: int = 256,
    concurrency: int = 4,
    embedder: PromptEmbedder | None = None,
) -> RegeneratedReplay:
    """Asks again, for each replayable request, the tiers the candidate's ladder climbs and
    the tier that answered it (so both answers can be checked), or ``every_tier``."""
    from tierserve.evaluate.replay import candidate_ladder, routed

    jobs: list[tuple[DecisionRecord, Sequence[str]]] = []
    refused: Counter[str] = Counter()
    for record in records:
        if not routed(record):
            continue
        why = replayable(record, accept_redacted)
        if why is not None:
            refused[why] += 1
            continue
        _, ladder = candidate_ladder(policy, record, embedder)
        wanted = list(policy.tiers) if every_tier else [s.tier for s in ladder.steps if s.tier]
        if record.answered_by in policy.tiers:
            wanted.append(record.answered_by)
        jobs.append((record, list(dict.fromkeys(t for t in wanted if t is not None))))
    validators = sorted(
        {v for r in policy.routes for s in r.ladder for v in s.validators if v in TEXT_CHECKS}
    )
    answers = regenerate(
        url,
        jobs,
        store,
        validators=validators,
        forbidden=policy.forbidden_phrases,
        max_tokens=max_tokens,
        concurrency=concurrency,
    )
    asked = {r.request_id for r, _ in jobs}
    kept = {key: value for key, value in answers.items() if key[0] in asked}
    return RegeneratedReplay(kept, dict(refused))
