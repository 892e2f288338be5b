"""Properties of ladder composition over random requests, tenants, floors and schemas."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import SUPPORT
from tierserve.errors import PermissionDeniedError
from tierserve.policy.compose import (
    SchemaChoice,
    compose_ladder,
    pinned_steps,
    raised_floor,
    task_hint,
)
from tierserve.policy.plan import RequestFacts, RoutePlan, eligible_steps, plan_route
from tierserve.policy.spec import RouteSpec, TaskClass, mentions
from tierserve.validate import ValidationContext

TIERS = SUPPORT.tiers
KEYS = [None, "sk-northbank-demo", "sk-internal-demo", "sk-unknown"]
TEXTS = [
    "How do I reset my password?",
    "Extract the fields from this email: C-12 was billed twice, ann@example.com",
    "Draft a reply promising a refund",
    "call the api to look up order 7",
    "hello",
]
OWN = SchemaChoice("own", {"type": "object"}, callers_own=True)
TICKET = SchemaChoice("ticket", SUPPORT.schemas["ticket"].schema_)

plans = st.builds(
    lambda text, key, task, floor: plan_route(
        SUPPORT,
        RequestFacts(text=text, api_key=key, task_hint=task, session_floor_tier=floor),
    ),
    st.sampled_from(TEXTS),
    st.sampled_from(KEYS),
    st.one_of(st.none(), st.sampled_from([t.value for t in TaskClass])),
    st.one_of(st.none(), st.sampled_from(TIERS)),
)


def climbs(tiers: list[str]) -> bool:
    order = [TIERS.index(t) for t in tiers]
    return order == sorted(order)


@settings(max_examples=200, deadline=None)
@given(plans, st.sampled_from(TIERS), st.booleans(), st.sampled_from([None, True, False]))
def test_a_pinned_tier_is_never_one_the_tenant_may_not_use(
    plan: RoutePlan, tier: str, structured: bool, constrained: bool | None
) -> None:
    allowed = plan.eligibility.allowed_tiers
    if tier not in allowed:
        with pytest.raises(PermissionDeniedError, match=f"may not use tier {tier!r}"):
            pinned_steps(
                plan, tier, structured=structured, constrained=constrained, cascade_name="ts"
            )
        return
    (step,) = pinned_steps(
        plan, tier, structured=structured, constrained=constrained, cascade_name="ts"
    )
    assert step.tier == tier
    assert step.constrained is (structured and constrained is not False)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.none(), st.sampled_from(TIERS)),
    st.lists(st.sampled_from(TIERS), max_size=3).map(lambda t: sorted(t, key=TIERS.index)),
)
def test_a_session_floor_only_rises(floor: str | None, tried: list[str]) -> None:
    raised = raised_floor(TIERS, floor, tried)
    if floor is not None:
        assert raised is not None and TIERS.index(raised) >= TIERS.index(floor)
    if len(tried) >= 2:
        assert raised is not None and TIERS.index(raised) >= TIERS.index(tried[-1])
    else:
        assert raised == floor


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(SUPPORT.routes),
    st.lists(st.sampled_from(TIERS), min_size=1, unique=True),
    st.booleans(),
    st.sampled_from(TIERS),
)
def test_a_session_floor_never_lowers_a_ladder(
    route: RouteSpec, allowed: list[str], complex_input: bool, floor: str
) -> None:
    steps, _, _ = eligible_steps(SUPPORT, route, tuple(allowed), complex_input, floor)
    tiers = [s.tier for s in steps if s.tier is not None]
    assert all(TIERS.index(t) >= TIERS.index(floor) for t in tiers)
    assert climbs(tiers)


@settings(max_examples=200, deadline=None)
@given(
    plans,
    st.sampled_from([None, OWN, TICKET]),
    st.one_of(st.none(), st.sampled_from(TIERS)),
)
def test_composition_never_moves_down_and_holds_every_step_to_a_requested_schema(
    plan: RoutePlan, requested: SchemaChoice | None, pinned: str | None
) -> None:
    if pinned is not None and pinned not in plan.eligibility.allowed_tiers:
        return
    ladder = compose_ladder(
        plan,
        pinned=pinned,
        requested=requested,
        route_schema=None,
        constrained=None,
        cascade_name="ts",
        validation=ValidationContext(),
    )
    generating = [s for s in ladder.steps if s.action == "generate"]
    assert climbs([str(s.tier) for s in generating])
    if requested is not None:
        assert all({"schema", "semantic"} <= set(s.validators) for s in generating)
        assert ladder.json_schema == requested.schema
    if pinned is not None:
        assert [s.tier for s in ladder.steps] == [pinned]
        assert ladder.on_exhausted == "accept_last" and not ladder.review_accepted


def test_a_requested_schema_means_extraction_unless_the_caller_says_otherwise() -> None:
    assert task_hint(None, TICKET) == "extraction"
    assert task_hint(None, OWN) == "extraction"
    assert task_hint("faq", TICKET) == "faq"
    assert task_hint(None, OWN, offers_tools=True) == "tool_use"


# Words that steer the classifier and the keyword rules: every task class's phrases.
STEERING = [phrase for rule in SUPPORT.task_rules for phrase in rule.any_of] + [
    "What is",
    "please",
    "How do I",
    "hello",
    "Write a poem",
    "?",
    "invoice",
    "name:",
]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(STEERING) | st.text(max_size=12), max_size=8), st.booleans())
def test_wording_does_not_change_the_route_of_a_schema_request(words: list[str], own: bool) -> None:
    """A request with an output schema is extraction whatever it says; only the risk layer's
    stated phrases (a refund, a lawyer) move it to the high-risk extraction ladder."""
    text = " ".join(words)
    requested = OWN if own else TICKET
    plan = plan_route(SUPPORT, RequestFacts(text=text, task_hint=task_hint(None, requested)))
    assert plan.task.task is TaskClass.EXTRACTION
    risky = [p for p in SUPPORT.risk.high_risk_phrases if mentions(text, p)]
    assert plan.route.name == ("extraction-high-risk" if risky else "extraction")
