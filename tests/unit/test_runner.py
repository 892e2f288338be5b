import json

import pytest

from tests.fakes import ScriptedEngine, scripted_runner
from tierserve.engine.types import ChatMessage, GenerationRequest
from tierserve.errors import ContextLengthError, InvalidRequestError, TierUnavailableError
from tierserve.policy.ladder import Ladder
from tierserve.policy.runner import (
    AnswerStarted,
    LadderFinished,
    LadderRunner,
    TextDelta,
)
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome
from tierserve.validate import ValidationContext

REQUEST = GenerationRequest("r1", (ChatMessage("user", "What is 12 plus 30?"),), max_tokens=16)
CONFIDENT = (-0.01, -0.02)
UNSURE = (-0.01, -2.0)
SCHEMA = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
CASCADE = Ladder(
    steps=(
        LadderStepSpec(tier="small", min_confidence=0.5),
        LadderStepSpec(tier="medium", min_confidence=0.5),
        LadderStepSpec(tier="large"),
    )
)


TIERS = ("small", "medium", "large")


def engines(**overrides: ScriptedEngine) -> dict[str, ScriptedEngine]:
    base = {
        name: ScriptedEngine(name, text=f"{name} says 42", logprobs=CONFIDENT)
        for name in ("small", "medium", "large")
    }
    base.update(overrides)
    return base


def runner(tiers: dict[str, ScriptedEngine]) -> LadderRunner:
    return scripted_runner(tiers)


async def test_confident_first_answer_is_kept() -> None:
    tiers = engines()
    result = await runner(tiers).run(CASCADE, REQUEST)
    assert result.outcome is Outcome.ACCEPT and result.answered_by == "small"
    assert tiers["medium"].requests == []


async def test_unsure_answer_escalates_with_reason() -> None:
    result = await runner(engines(small=ScriptedEngine("small", logprobs=UNSURE))).run(
        CASCADE, REQUEST
    )
    assert result.tiers_tried == ("small", "medium")
    assert result.steps[0].reason == "conf=0.14<0.50 => escalate medium"
    assert result.steps[1].reason == "conf=0.98>=0.50 => accept medium"
    assert result.text == "medium says 42"


async def test_every_tier_unsure_ends_on_the_last_tier() -> None:
    unsure = {n: ScriptedEngine(n, logprobs=UNSURE) for n in ("small", "medium", "large")}
    result = await runner(unsure).run(CASCADE, REQUEST)
    assert result.tiers_tried == ("small", "medium", "large")
    assert result.steps[-1].reason == "conf=0.14 => accept large"


async def test_each_step_gets_its_own_request_id_and_contract() -> None:
    tiers = engines(medium=ScriptedEngine("medium", text="not json"))
    ladder = Ladder(
        steps=(
            LadderStepSpec(tier="medium", validators=["schema"], max_tokens=50),
            LadderStepSpec(
                tier="large",
                constrained=True,
                validators=["schema"],
                max_tokens=90,
                extra_context="Copy ids exactly.",
            ),
        ),
        json_schema=SCHEMA,
        validation=ValidationContext(json_schema=SCHEMA),
    )
    tiers["large"].text = json.dumps({"id": "C-1"})
    result = await runner(tiers).run(ladder, REQUEST)
    first, second = tiers["medium"].requests[0], tiers["large"].requests[0]
    assert (first.request_id, first.max_tokens, first.json_schema) == ("r1-medium", 50, None)
    assert (second.request_id, second.max_tokens, second.json_schema) == ("r1-large", 90, SCHEMA)
    assert second.messages[0] == ChatMessage("system", "Copy ids exactly.")
    assert result.steps[0].reason == "schema=fail(invalid JSON at char 0) => escalate large"
    assert result.answered_by == "large"


async def test_validator_failure_on_the_last_step_goes_to_human_review() -> None:
    ladder = Ladder(
        steps=(
            LadderStepSpec(tier="large", validators=["schema"]),
            LadderStepSpec(action="human_review"),
        ),
        validation=ValidationContext(json_schema=SCHEMA),
    )
    result = await runner(engines()).run(ladder, REQUEST)
    assert result.outcome is Outcome.HUMAN_REVIEW
    assert result.text == "queued for review"
    assert result.generation is not None and result.generation.tier == "large"  # the draft
    assert result.answered_by is None  # no tier's answer is returned
    assert result.steps[0].reason.endswith("=> human_review")


async def test_exhausted_route_can_fail_safely() -> None:
    ladder = Ladder(
        steps=(LadderStepSpec(tier="small", min_confidence=0.9),), on_exhausted="safe_failure"
    )
    result = await runner(engines(small=ScriptedEngine("small", logprobs=UNSURE))).run(
        ladder, REQUEST
    )
    assert result.outcome is Outcome.SAFE_FAILURE and result.text == "sorry"
    assert result.steps[0].reason == "conf=0.14<0.90 => safe_failure"


async def test_failing_tier_escalates_and_records_the_error() -> None:
    tiers = engines(small=ScriptedEngine("small", error=RuntimeError("engine died")))
    result = await runner(tiers).run(CASCADE, REQUEST)
    assert result.answered_by == "medium"
    assert result.steps[0].reason == "error=RuntimeError => escalate medium"
    assert result.steps[0].error == "engine died"


async def test_failing_last_tier_is_a_retryable_503() -> None:
    dead = {n: ScriptedEngine(n, error=RuntimeError("down")) for n in ("small", "medium", "large")}
    with pytest.raises(TierUnavailableError, match="large") as caught:
        await runner(dead).run(CASCADE, REQUEST)
    assert caught.value.http_status == 503 and caught.value.retryable
    assert "RuntimeError" not in str(caught.value) and "down" not in str(caught.value)
    assert caught.value.detail == "error=RuntimeError: down"


async def test_bad_request_is_not_escalated() -> None:
    tiers = engines(small=ScriptedEngine("small", error=InvalidRequestError("prompt too long")))
    with pytest.raises(InvalidRequestError):
        await runner(tiers).run(CASCADE, REQUEST)
    assert tiers["medium"].requests == []


async def test_stream_of_accepted_early_tier_sends_its_text() -> None:
    events = [e async for e in runner(engines()).stream(CASCADE, REQUEST)]
    assert isinstance(events[0], AnswerStarted) and events[0].answered_by == "small"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "small says 42"
    assert isinstance(events[-1], LadderFinished)


async def test_stream_reaching_last_tier_streams_it_piecewise() -> None:
    unsure = {
        n: ScriptedEngine(n, text=f"{n} is not sure", logprobs=UNSURE) for n in ("small", "medium")
    }
    events = [e async for e in runner(engines(**unsure)).stream(CASCADE, REQUEST)]
    started = events[0]
    assert isinstance(started, AnswerStarted) and started.answered_by == "large"
    assert [s.tier for s in started.steps_before] == ["small", "medium"]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == "large says 42"
    finished = events[-1]
    assert isinstance(finished, LadderFinished)
    assert finished.result.tiers_tried == ("small", "medium", "large")


async def test_stream_of_a_gated_last_step_is_buffered_then_sent() -> None:
    ladder = Ladder(steps=(LadderStepSpec(tier="large", validators=["non_empty"]),))
    events = [e async for e in runner(engines()).stream(ladder, REQUEST)]
    assert [type(e).__name__ for e in events] == ["AnswerStarted", "TextDelta", "LadderFinished"]


async def test_route_requiring_review_queues_even_a_good_answer() -> None:
    ladder = Ladder(steps=(LadderStepSpec(tier="large"),), review_accepted=True)
    events = [e async for e in runner(engines()).stream(ladder, REQUEST)]
    finished = events[-1]
    assert isinstance(finished, LadderFinished)
    result = finished.result
    assert result.outcome is Outcome.HUMAN_REVIEW and result.text == "queued for review"
    assert result.generation is not None and result.generation.text == "large says 42"
    assert result.steps[-1].reason == "route requires review => human_review"


async def test_a_prompt_too_long_for_one_tier_escalates_to_a_tier_with_room() -> None:
    short = ScriptedEngine("small", error=ContextLengthError("small", 600, 16, 512))
    result = await runner(engines(small=short)).run(CASCADE, REQUEST)
    assert result.answered_by == "medium"
    first = result.steps[0]
    assert first.reason == "context>512 => escalate medium"
    assert first.failure is FailureKind.CONTEXT_LENGTH and first.failure_code == "context>512"
    assert first.escalation_reason == "context_length"


async def test_a_prompt_too_long_for_every_tier_is_a_400_naming_the_limit() -> None:
    short = {n: ScriptedEngine(n, error=ContextLengthError(n, 9000, 16, 2048)) for n in TIERS}
    with pytest.raises(ContextLengthError, match="2048-token context of tier 'large'") as caught:
        await runner(short).run(CASCADE, REQUEST)
    assert caught.value.http_status == 400 and caught.value.param == "messages"
