"""Properties of the planner over random requests and random tenants (hypothesis)."""

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import STACK_TIERS
from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import Policy, TaskClass, changes_contract, load_policy

BASE = load_policy(
    Path(__file__).resolve().parents[3] / "serve_configs/policies/support.yaml", STACK_TIERS
)
TIERS = BASE.tiers

PHRASES = [
    "How do I reset my password?",
    "refund",
    "extract the fields from this email",
    "draft a reply",
    "call the API",
    "legal",
    "jane@example.com",
    "4111 1111 1111 1111",
    "my order",
    "security incident",
    "Hello",
    "What are your opening hours?",
    "HR",
]


class RandomPredictor:
    def __init__(self, task: TaskClass, probability: float) -> None:
        self.task, self.probability = task, probability

    def predict(self, text: str) -> tuple[TaskClass, float]:
        return self.task, self.probability


tenants = st.fixed_dictionaries(
    {
        "allowed": st.one_of(st.none(), st.lists(st.sampled_from(TIERS), min_size=1, unique=True)),
        "compliance": st.sampled_from(["standard", "regulated"]),
        "importance": st.sampled_from(["standard", "high"]),
    }
)
requests = st.fixed_dictionaries(
    {
        "text": st.lists(
            st.sampled_from(PHRASES) | st.text(max_size=40), min_size=1, max_size=6
        ).map(" ".join),
        "hint": st.one_of(st.none(), st.sampled_from([t.value for t in TaskClass])),
        "floor": st.one_of(st.none(), st.sampled_from(TIERS)),
        "known_key": st.booleans(),
        "task": st.sampled_from(list(TaskClass)),
        "p": st.floats(0, 1),
    }
)


def with_tenant(tenant: dict[str, object]) -> Policy:
    data = BASE.model_dump()
    data["tenants"].append(
        {
            "id": "random",
            "api_keys": ["sk-random"],
            "allowed_tiers": tenant["allowed"],
            "compliance": tenant["compliance"],
            "importance": tenant["importance"],
        }
    )
    return Policy.model_validate(data)


def plan_for(tenant: dict[str, object], request: dict[str, object]):  # type: ignore[no-untyped-def]
    policy = with_tenant(tenant)
    features = RequestFacts(
        text=str(request["text"]),
        api_key="sk-random" if request["known_key"] else None,
        task_hint=request["hint"],  # type: ignore[arg-type]
        session_floor_tier=request["floor"],  # type: ignore[arg-type]
    )
    predictor = RandomPredictor(request["task"], float(request["p"]))  # type: ignore[arg-type]
    return policy, plan_route(policy, features, predictor)


@settings(max_examples=300, deadline=None)
@given(tenants, requests)
def test_a_tenant_is_never_planned_on_a_tier_it_is_not_allowed(tenant, request) -> None:  # type: ignore[no-untyped-def]
    policy, plan = plan_for(tenant, request)
    allowed = set(plan.eligibility.tenant.allowed_tiers or TIERS)
    assert {s.tier for s in plan.steps if s.tier} <= allowed
    if plan.eligibility.pii and policy.pii_allowed_tiers:
        assert {s.tier for s in plan.steps if s.tier} <= set(policy.pii_allowed_tiers)


@settings(max_examples=300, deadline=None)
@given(tenants, requests)
def test_every_plan_has_reason_codes_and_a_version(tenant, request) -> None:  # type: ignore[no-untyped-def]
    _, plan = plan_for(tenant, request)
    assert plan.policy_version == BASE.version
    assert plan.reasons[-1] == plan.summary
    assert any(r.startswith("task=") for r in plan.reasons)
    assert any(r.startswith("tenant=") for r in plan.reasons)
    assert plan.steps


@settings(max_examples=300, deadline=None)
@given(tenants, requests)
def test_a_ladder_never_moves_down_and_every_escalation_changes_the_contract(
    tenant, request
) -> None:  # type: ignore[no-untyped-def]
    _, plan = plan_for(tenant, request)
    generating = [s for s in plan.steps if s.action == "generate"]
    for before, after in itertools.pairwise(generating):
        assert TIERS.index(after.tier) >= TIERS.index(before.tier)  # type: ignore[arg-type]
        assert changes_contract(before, after, TIERS)
    if request["floor"] is not None:
        floor = TIERS.index(request["floor"])  # type: ignore[arg-type]
        assert all(TIERS.index(s.tier) >= floor for s in generating)  # type: ignore[arg-type]
