"""Serving, replay and the offline sweep reach the same decisions and reason codes, because all
three walk a ladder through the same kernel (hypothesis drives random ladders, confidences,
validator outcomes and tier errors through each)."""

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import ScriptedEngine, scripted_runner
from tierserve.engine.types import ChatMessage, GenerationRequest
from tierserve.errors import ContextLengthError, TierTimeoutError, TierUnavailableError
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.replay import replay_ladder
from tierserve.evaluate.sweep import run_cascade
from tierserve.policy.ladder import Ladder
from tierserve.policy.runner import LadderResult
from tierserve.policy.spec import LadderStepSpec
from tierserve.validate import ValidationContext

TIERS = ("small", "medium", "large")
REQUEST = GenerationRequest("r", (ChatMessage("user", "What is 12 plus 30?"),), max_tokens=16)
# Answers whose validator results differ: empty, JSON, JSON with a forbidden phrase, prose.
TEXTS = ("", "{}", '{"a": "we guarantee it"}', "Forty-two.", "we guarantee it")
VALIDATION = ValidationContext(json_schema={"type": "object"}, forbidden_phrases=["we guarantee"])
ERRORS = (
    None,
    None,
    None,
    RuntimeError("engine died"),
    TierTimeoutError("x", "slow"),
    ContextLengthError("x", 900, 16, 512),
)


steps = st.builds(
    lambda threshold, validators: (threshold, validators),
    st.one_of(st.none(), st.floats(0, 1)),
    st.lists(st.sampled_from(["non_empty", "schema", "safety"]), unique=True, max_size=3),
)


@st.composite
def ladders(draw: st.DrawFn) -> Ladder:
    tiers = draw(st.lists(st.sampled_from(TIERS), min_size=1, unique=True))
    tiers.sort(key=TIERS.index)  # a ladder only climbs
    specs = []
    for tier in tiers:
        threshold, validators = draw(steps)
        specs.append(LadderStepSpec(tier=tier, min_confidence=threshold, validators=validators))
    action = draw(st.sampled_from([None, "human_review", "safe_failure"]))
    if action is not None:
        specs.append(LadderStepSpec(action=action))
    return Ladder(
        steps=tuple(specs),
        on_exhausted=draw(st.sampled_from(["accept_last", "human_review", "safe_failure"])),
        review_accepted=draw(st.booleans()),
        validation=VALIDATION,
    )


behaviour = st.tuples(
    st.sampled_from(TEXTS), st.floats(0.001, 1.0), st.sampled_from(range(len(ERRORS)))
)


def serve(ladder: Ladder, tiers: dict[str, tuple[str, float, int]]) -> LadderResult | Exception:
    engines = {
        tier: ScriptedEngine(tier, text=text, logprobs=(math.log(c),), error=ERRORS[error])
        for tier, (text, c, error) in tiers.items()
    }
    try:
        return asyncio.run(scripted_runner(engines, 0.1).run(ladder, REQUEST))
    except (TierUnavailableError, TierTimeoutError, ContextLengthError) as refused:
        return refused


@settings(max_examples=300, deadline=None)
@given(ladders(), st.fixed_dictionaries({t: behaviour for t in TIERS}))
def test_replay_of_what_serving_recorded_reaches_the_same_decisions(
    ladder: Ladder, tiers: dict[str, tuple[str, float, int]]
) -> None:
    served = serve(ladder, tiers)
    if isinstance(served, Exception):
        # No answer to return: the last tier walked failed and the route accepts its last
        # answer (or every tier with room refused for length: a 400 naming the limit).
        assert ladder.on_exhausted == "accept_last" or ladder.steps[-1].action == "generate"
        return
    replayed = replay_ladder(ladder, served.steps)
    assert replayed.answered == (served.answered_by or str(served.outcome))
    assert replayed.reasons == tuple(step.reason for step in served.steps)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(TIERS), min_size=1, unique=True),
    st.lists(st.floats(0, 1), min_size=2, max_size=2),
    st.fixed_dictionaries({t: st.floats(0.001, 1.0) for t in TIERS}),
)
def test_the_sweep_over_recorded_signals_reaches_the_serving_decisions(
    chosen: list[str], thresholds: list[float], confidence: dict[str, float]
) -> None:
    tiers = sorted(chosen, key=TIERS.index)
    ladder = Ladder(
        steps=(
            *(
                LadderStepSpec(tier=t, min_confidence=threshold)
                for t, threshold in zip(tiers[:-1], thresholds, strict=False)
            ),
            LadderStepSpec(tier=tiers[-1]),
        )
    )
    served = serve(ladder, {t: ("Forty-two.", confidence[t], 0) for t in tiers})
    assert isinstance(served, LadderResult)
    # The outcome row holds what collection records: each tier's measured confidence signal.
    measured = {s.tier: s.confidence for s in served.steps if s.tier and s.confidence}
    row = OutcomeRow(
        id="r",
        prompt="What is 12 plus 30?",
        outcomes={
            tier: TierOutcome(
                quality=1.0,
                cost=float(index + 1),
                signals={"conf_q10": measured.get(tier, confidence[tier])},
            )
            for index, tier in enumerate(tiers)
        },
    )
    (choice,) = run_cascade(OutcomeSet.of([row], tiers), "conf_q10", thresholds[: len(tiers) - 1])
    assert choice.answered_by == served.answered_by
    assert choice.tried == served.tiers_tried
    assert choice.reasons == tuple(step.reason for step in served.steps)
