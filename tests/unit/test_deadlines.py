"""A request's deadline caps its whole ladder, and a timed-out tier is really stopped.

The times here are tenths of a second on scripted tiers that would otherwise take seconds:
what is checked is which tiers ran and how the request ended, not how fast anything is."""

import asyncio

import pytest

from tests.fakes import ScriptedEngine
from tierserve.engine.types import ChatMessage, GenerationRequest
from tierserve.errors import TierTimeoutError
from tierserve.policy.ladder import Ladder
from tierserve.policy.runner import LadderRunner, TerminalMessages
from tierserve.policy.spec import LadderStepSpec

REQUEST = GenerationRequest("r1", (ChatMessage("user", "What is 12 plus 30?"),), max_tokens=16)
CASCADE = Ladder(
    steps=(
        LadderStepSpec(tier="small", min_confidence=0.5),
        LadderStepSpec(tier="medium", min_confidence=0.5),
        LadderStepSpec(tier="large"),
    )
)


def stuck_tiers() -> dict[str, ScriptedEngine]:
    return {name: ScriptedEngine(name, delay_s=30) for name in ("small", "medium", "large")}


def runner(engines: dict[str, ScriptedEngine], deadline_s: float | None) -> LadderRunner:
    return LadderRunner(
        engines,
        confidence_quantile=0.0,
        tier_timeout_s=0.2,
        request_deadline_s=deadline_s,
        messages=TerminalMessages(human_review="queued", safe_failure="sorry"),
    )


async def test_the_deadline_caps_the_ladder_and_ends_in_a_504() -> None:
    tiers = stuck_tiers()
    with pytest.raises(TierTimeoutError) as caught:
        await runner(tiers, deadline_s=0.3).run(CASCADE, REQUEST)
    assert caught.value.http_status == 504 and caught.value.retryable
    assert "deadline>0.3s" in caught.value.detail
    # small used its 0.2 s, medium the 0.1 s left; large was never started.
    assert [len(tiers[t].requests) for t in ("small", "medium", "large")] == [1, 1, 0]


async def test_without_a_deadline_each_tier_gets_its_own_timeout() -> None:
    tiers = stuck_tiers()
    with pytest.raises(TierTimeoutError) as caught:
        await runner(tiers, deadline_s=None).run(CASCADE, REQUEST)
    assert "timeout>0.2s" in caught.value.detail
    assert [len(tiers[t].requests) for t in ("small", "medium", "large")] == [1, 1, 1]


async def test_a_timed_out_stream_is_stopped_not_left_running() -> None:
    tiers = stuck_tiers()
    tiers["large"].text = "one two three"
    single = Ladder(steps=(LadderStepSpec(tier="large"),))
    events = runner(tiers, deadline_s=0.3).stream(single, REQUEST)
    with pytest.raises(TierTimeoutError):
        async for _ in events:
            pass
    await asyncio.sleep(0.05)
    assert tiers["large"].requests and tiers["large"].finished == 0


async def test_a_stream_finished_in_another_task_keeps_its_deadline() -> None:
    # The gateway reads a stream's first events in the request's task and the rest in the
    # response's: the deadline must hold across the two, and cancel neither.
    tiers = {"large": ScriptedEngine("large", text="a b c d e f", delay_s=0.05)}
    single = Ladder(steps=(LadderStepSpec(tier="large"),))
    events = runner(tiers, deadline_s=0.2).stream(single, REQUEST)
    started, first_text = await anext(events), await anext(events)
    rest = asyncio.create_task(_drain(events))
    with pytest.raises(TierTimeoutError):
        await rest
    assert started and first_text and tiers["large"].finished == 0


async def _drain(events: object) -> None:
    async for _ in events:  # type: ignore[attr-defined]
        pass
