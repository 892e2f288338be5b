"""The one ladder walk that serving, replay and the sweep share."""

import pytest

from tierserve.policy.ladder import Answer, Failure, Finish, Ladder, LadderWalk
from tierserve.policy.spec import LadderStepSpec
from tierserve.policy.step import FailureKind, Outcome

LADDER = Ladder(
    steps=(
        LadderStepSpec(tier="small", min_confidence=0.6),
        LadderStepSpec(tier="medium", min_confidence=0.5),
        LadderStepSpec(tier="large"),
    )
)


def test_a_walk_climbs_until_the_kernel_finishes_and_keeps_every_verdict() -> None:
    walk = LadderWalk(LADDER)
    seen = []
    observations = [Answer(0.2), Failure(FailureKind.TIMEOUT, "timeout>30s"), Answer(0.1)]
    while (move := walk.next_step) is not None:
        seen.append(LADDER.steps[move.index].tier)
        walk.observe(observations[move.index])
    assert seen == ["small", "medium", "large"]
    assert [v.reason for v in walk.verdicts] == [
        "conf=0.20<0.60 => escalate medium",
        "timeout>30s => escalate large",
        "conf=0.10 => accept large",
    ]
    assert walk.end == Finish(Outcome.ACCEPT, 2)


def test_a_walk_refuses_to_be_read_out_of_turn() -> None:
    walk = LadderWalk(LADDER)
    with pytest.raises(RuntimeError, match="has not ended"):
        _ = walk.end
    walk.observe(Answer(0.9))
    assert walk.next_step is None and walk.end == Finish(Outcome.ACCEPT, 0)
    with pytest.raises(RuntimeError, match="has ended"):
        walk.observe(Answer(0.9))
