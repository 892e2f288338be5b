"""A route's start router: the ladder starts at the cheapest tier predicted to suffice, with
the reason in the plan; the policy inlines the router file; serving and offline evaluation
decide by one rule."""

import json
from pathlib import Path

import pytest
import yaml

from tests.fakes import STACK_TIERS
from tests.fakes import policy_data as shipped_policy_data
from tierserve.errors import ConfigError
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.routers import start_indexes
from tierserve.evaluate.sweep import run_cascade
from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import load_policy
from tierserve.policy.start_router import StartRouterSpec, TierSufficiency, first_sufficient

EASY, HARD = [1.0, 0.0], [0.0, 1.0]
ROUTER = {
    "encoder": "all-MiniLM-L6-v2-int8",
    "prefix": "Q: ",
    "suffix": "",
    # P(small suffices) = sigmoid(4 * easy - 4 * hard); P(medium) = sigmoid(2 * easy)
    "tiers": {"small": {"weights": [4.0, -4.0], "bias": 0.0}, "medium": {"weights": [2.0, 0.0]}},
}


class TwoWordEmbedder:
    """Embeds 'easy' and 'hard' prompts on two axes, and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def embed(self, text: str) -> list[float]:
        self.asked.append(text)
        return EASY if "easy" in text else HARD


def policy_with_router(tmp_path: Path, min_probability: float = 0.5) -> Path:
    data = shipped_policy_data()
    # Without the question kinds: every general request climbs the one routed ladder.
    data.pop("question_kinds")
    data["routes"] = [r for r in data["routes"] if "kinds" not in r]
    general = next(r for r in data["routes"] if "unknown" in r["tasks"])
    general["ladder"] = [
        {"tier": "small", "validators": ["non_empty"], "min_confidence": 0.4},
        {"tier": "medium", "validators": ["non_empty"], "min_confidence": 0.5},
        {"tier": "large", "validators": ["non_empty"]},
    ]
    general["start_router"] = {"file": "router.json", "min_probability": min_probability}
    (tmp_path / "router.json").write_text(json.dumps(ROUTER))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_policy_inlines_the_router_file(tmp_path: Path) -> None:
    policy = load_policy(policy_with_router(tmp_path), STACK_TIERS)
    router = next(r.start_router for r in policy.routes if r.start_router)
    assert router.file == "router.json" and router.prefix == "Q: "
    assert router.tiers["small"].probability(EASY) == pytest.approx(0.982, abs=1e-3)
    # The policy travels as data: a copy rebuilt from its dump needs no file.
    assert StartRouterSpec.model_validate(router.model_dump()).tiers == router.tiers


def test_a_missing_router_file_is_named(tmp_path: Path) -> None:
    path = policy_with_router(tmp_path)
    (tmp_path / "router.json").unlink()
    with pytest.raises(ConfigError, match=r"start_router.file .*router.json"):
        load_policy(path, STACK_TIERS)


def test_the_plan_starts_where_the_router_says_and_says_why(tmp_path: Path) -> None:
    policy = load_policy(policy_with_router(tmp_path), STACK_TIERS)
    embedder = TwoWordEmbedder()
    easy = plan_route(policy, RequestFacts("zorblat easy glim?"), embedder=embedder)
    assert easy.route.start_router is not None
    assert [s.tier for s in easy.steps] == ["small", "medium", "large"]
    assert "router: p(small)=0.98>=0.50 => start small" in easy.reasons
    hard = plan_route(policy, RequestFacts("zorblat hard glim?"), embedder=embedder)
    assert [s.tier for s in hard.steps] == ["medium", "large"]
    assert "router: p(small)=0.02<0.50,p(medium)=0.50>=0.50 => start medium" in hard.reasons
    assert "router => skip small" in hard.reasons
    assert embedder.asked[0] == "zorblat easy glim?"


def test_without_an_encoder_the_whole_ladder_is_climbed_and_said(tmp_path: Path) -> None:
    policy = load_policy(policy_with_router(tmp_path), STACK_TIERS)
    plan = plan_route(policy, RequestFacts("zorblat hard glim?"))
    assert [s.tier for s in plan.steps] == ["small", "medium", "large"]
    assert "router: no encoder here => whole ladder" in plan.reasons


def test_a_tier_the_router_cannot_use_is_not_predicted(tmp_path: Path) -> None:
    policy = load_policy(policy_with_router(tmp_path), STACK_TIERS)
    # PII keeps the small tier away: the router chooses among the tiers left.
    plan = plan_route(
        policy,
        RequestFacts("zorblat easy, mail me at jo@example.com"),
        embedder=TwoWordEmbedder(),
    )
    assert [s.tier for s in plan.steps] == ["medium", "large"]
    assert any(r.startswith("router: p(medium)=") for r in plan.reasons)


def test_one_rule_decides_in_serving_and_offline() -> None:
    probabilities = {"small": 0.3, "medium": 0.7}
    assert first_sufficient(["small", "medium", "large"], probabilities.get, 0.5)[0] == "medium"
    assert first_sufficient(["small", "medium", "large"], probabilities.get, 0.8)[0] == "large"
    assert first_sufficient(["small", "large"], {}.get, 0.5) == (
        "small",
        "router: no model for small => start small",
    )
    suffices = {"small": [0.3, 0.9], "medium": [0.7, 0.1]}
    assert start_indexes(("small", "medium", "large"), suffices, 0.5) == [1, 0]
    assert TierSufficiency(constant=0.25).probability([9.0]) == 0.25


def test_a_cascade_that_starts_higher_skips_and_does_not_pay_the_cheap_tier() -> None:
    row = OutcomeRow(
        id="r",
        prompt="p",
        outcomes={
            "small": TierOutcome(quality=0.0, cost=1.0, signals={"c": 0.9}),
            "medium": TierOutcome(quality=1.0, cost=2.0, signals={"c": 0.9}),
            "large": TierOutcome(quality=1.0, cost=5.0, signals={"c": 0.9}),
        },
    )
    outcomes = OutcomeSet.of([row, row.model_copy(update={"id": "s"})])
    first, second = run_cascade(outcomes, "c", [0.5, 0.5], starts=[0, 1])
    assert (first.answered_by, first.cost, first.quality) == ("small", 1.0, 0.0)
    assert (second.answered_by, second.tried, second.cost) == ("medium", ("medium",), 2.0)
