import pytest

from tests.fakes import ScriptedEngine
from tierserve.engine.types import ChatMessage, GenerationRequest
from tierserve.errors import InvalidRequestError, TierUnavailableError
from tierserve.policy.cascade import (
    AnswerStarted,
    Cascade,
    CascadeFinished,
    LadderStep,
    TextDelta,
)

REQUEST = GenerationRequest("r1", (ChatMessage("user", "What is 12 plus 30?"),), max_tokens=16)
LADDER = [LadderStep("small", 0.5), LadderStep("medium", 0.5), LadderStep("large", None)]
CONFIDENT = (-0.01, -0.02)
UNSURE = (-0.01, -2.0)


def engines(**overrides: ScriptedEngine) -> dict[str, ScriptedEngine]:
    base = {
        name: ScriptedEngine(name, text=f"{name} says 42", logprobs=CONFIDENT)
        for name in ("small", "medium", "large")
    }
    base.update(overrides)
    return base


def cascade(tiers: dict[str, ScriptedEngine], quantile: float = 0.0) -> Cascade:
    return Cascade(LADDER, tiers, confidence_quantile=quantile, tier_timeout_s=5)


async def test_confident_small_answer_is_kept() -> None:
    tiers = engines()
    result = await cascade(tiers).run(REQUEST)
    assert result.answered_by == "small"
    assert result.tiers_tried == ("small",)
    assert tiers["medium"].requests == []


async def test_unsure_small_answer_escalates_with_reason() -> None:
    tiers = engines(small=ScriptedEngine("small", logprobs=UNSURE))
    result = await cascade(tiers).run(REQUEST)
    assert result.answered_by == "medium"
    assert result.tiers_tried == ("small", "medium")
    assert result.steps[0].reason == "conf=0.14<0.50 => escalate medium"
    assert result.steps[1].reason == "conf=0.98>=0.50 => accept medium"
    assert result.generation.text == "medium says 42"


async def test_every_tier_unsure_ends_on_the_last_tier() -> None:
    unsure = {n: ScriptedEngine(n, logprobs=UNSURE) for n in ("small", "medium", "large")}
    result = await cascade(unsure).run(REQUEST)
    assert result.tiers_tried == ("small", "medium", "large")
    assert result.steps[-1].reason == "conf=0.14, last tier => accept large"


async def test_each_tier_gets_its_own_request_id() -> None:
    tiers = engines(small=ScriptedEngine("small", logprobs=UNSURE))
    await cascade(tiers).run(REQUEST)
    assert tiers["small"].requests[0].request_id == "r1-small"
    assert tiers["medium"].requests[0].request_id == "r1-medium"


async def test_failing_tier_escalates_and_records_the_error() -> None:
    tiers = engines(small=ScriptedEngine("small", error=RuntimeError("engine died")))
    result = await cascade(tiers).run(REQUEST)
    assert result.answered_by == "medium"
    assert result.steps[0].reason == "error=RuntimeError => escalate medium"
    assert result.steps[0].error == "engine died"


async def test_failing_last_tier_is_unavailable() -> None:
    dead = {n: ScriptedEngine(n, error=RuntimeError("down")) for n in ("small", "medium", "large")}
    with pytest.raises(TierUnavailableError, match="large"):
        await cascade(dead).run(REQUEST)


async def test_bad_request_is_not_escalated() -> None:
    bad = InvalidRequestError("prompt too long")
    tiers = engines(small=ScriptedEngine("small", error=bad))
    with pytest.raises(InvalidRequestError):
        await cascade(tiers).run(REQUEST)
    assert tiers["medium"].requests == []


async def test_stream_of_accepted_early_tier_sends_its_text() -> None:
    events = [e async for e in cascade(engines()).stream(REQUEST)]
    assert isinstance(events[0], AnswerStarted) and events[0].tier == "small"
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "small says 42"
    assert isinstance(events[-1], CascadeFinished)
    assert events[-1].result.tiers_tried == ("small",)


async def test_stream_reaching_last_tier_streams_it_piecewise() -> None:
    unsure = {
        n: ScriptedEngine(n, text=f"{n} is not sure", logprobs=UNSURE) for n in ("small", "medium")
    }
    events = [e async for e in cascade(engines(**unsure)).stream(REQUEST)]
    started = events[0]
    assert isinstance(started, AnswerStarted) and started.tier == "large"
    assert [s.tier for s in started.steps_before] == ["small", "medium"]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == "large says 42"
    finished = events[-1]
    assert isinstance(finished, CascadeFinished)
    assert finished.result.tiers_tried == ("small", "medium", "large")


def test_ladder_needs_engines_for_every_tier() -> None:
    with pytest.raises(ValueError, match="no engine"):
        Cascade(LADDER, {"small": ScriptedEngine("small")}, confidence_quantile=0, tier_timeout_s=1)
