from pathlib import Path

import pytest

from tests.fakes import STACK_TIERS
from tierserve.errors import InvalidRequestError
from tierserve.pii import detect_pii
from tierserve.policy.classify import classify_task
from tierserve.policy.eligibility import check_eligibility, resolve_tenant
from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import TaskClass, load_policy

POLICY = load_policy(
    Path(__file__).resolve().parents[3] / "serve_configs/policies/support.yaml", STACK_TIERS
)


class FixedPredictor:
    def __init__(self, task: TaskClass, probability: float) -> None:
        self.task, self.probability = task, probability

    def predict(self, text: str) -> tuple[TaskClass, float]:
        return self.task, self.probability


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("write to jane.doe@example.com", ("email",)),
        ("card 4111 1111 1111 1111 please", ("card",)),
        ("card 4111 1111 1111 1112 please", ()),  # fails the Luhn check: not a card
        ("my ssn is 123-45-6789", ("ssn",)),
        ("call me at +1 415 555 0100", ("phone",)),
        ("IBAN DE89 3704 0044 0532 0130 00", ("iban",)),
        ("order 42 arrived late", ()),
    ],
)
def test_pii_detection(text: str, kinds: tuple[str, ...]) -> None:
    assert detect_pii(text) == kinds


def test_unknown_key_gets_the_default_tenant() -> None:
    assert resolve_tenant(POLICY, "sk-stolen").id == "public"
    assert resolve_tenant(POLICY, None).id == "public"
    assert resolve_tenant(POLICY, "sk-northbank-demo").id == "northbank"


def test_pii_removes_the_small_tier_with_a_reason() -> None:
    tenant = resolve_tenant(POLICY, None)
    result = check_eligibility(POLICY, tenant, "reset password for bob@example.com")
    assert result.allowed_tiers == ("medium", "large")
    assert "pii=email => tiers medium,large" in result.reasons


def test_hint_beats_rules_and_bad_hint_is_a_400() -> None:
    assert classify_task(POLICY, "please refund", "faq", None).task is TaskClass.FAQ
    with pytest.raises(InvalidRequestError, match="task hint is not a task class"):
        classify_task(POLICY, "hi", "poetry", None)


def test_rule_then_classifier_then_unknown() -> None:
    rule = classify_task(POLICY, "Please extract the fields", None, None)
    assert rule.task is TaskClass.EXTRACTION and rule.source == "rule"
    learned = classify_task(
        POLICY, "How do I reset my password?", None, FixedPredictor(TaskClass.FAQ, 0.9)
    )
    assert learned.task is TaskClass.FAQ and learned.reason == "task=faq(p=0.90)"
    unsure = classify_task(POLICY, "hmm", None, FixedPredictor(TaskClass.FAQ, 0.3))
    assert unsure.task is TaskClass.UNKNOWN and "p=0.30<0.60" in unsure.reason


def test_regulated_tenant_never_plans_the_small_tier() -> None:
    faq = FixedPredictor(TaskClass.FAQ, 0.95)
    plan = plan_route(
        POLICY, RequestFacts("How do I reset my password?", api_key="sk-northbank-demo"), faq
    )
    assert all(step.tier != "small" for step in plan.steps)
    assert plan.summary == "task=faq,risk=high => medium"


def test_everyday_faq_starts_small_and_says_why() -> None:
    plan = plan_route(
        POLICY, RequestFacts("How do I reset my password?"), FixedPredictor(TaskClass.FAQ, 0.95)
    )
    assert plan.route.name == "faq"
    assert [s.tier for s in plan.steps] == ["small", "medium", "large"]
    assert plan.reasons[-1] == "task=faq,risk=low => small"


def test_policy_sensitive_drafting_goes_to_large_then_human_review() -> None:
    plan = plan_route(POLICY, RequestFacts("Draft a reply offering a refund"))
    assert plan.route.name == "policy-sensitive"
    assert [s.tier or s.action for s in plan.steps] == ["large", "human_review"]


def test_session_floor_keeps_the_escalated_tier() -> None:
    faq = FixedPredictor(TaskClass.FAQ, 0.95)
    plan = plan_route(
        POLICY, RequestFacts("How do I reset my password?", session_floor_tier="medium"), faq
    )
    assert plan.steps[0].tier == "medium"
    assert "session_escalated" in plan.risk.factors
    plan = plan_route(
        POLICY, RequestFacts("How do I reset my password?", session_floor_tier="large"), faq
    )
    assert [s.tier for s in plan.steps] == ["large"]
    assert "session_floor=large => skip medium" in plan.reasons


def test_no_eligible_tier_ends_in_the_routes_terminal_action() -> None:
    data = POLICY.model_dump()
    data["tenants"].append({"id": "tiny", "api_keys": ["sk-tiny"], "allowed_tiers": ["small"]})
    policy = type(POLICY).model_validate(data)
    plan = plan_route(policy, RequestFacts("Draft a reply offering a refund", api_key="sk-tiny"))
    assert [s.action for s in plan.steps] == ["human_review"]


def test_risk_phrases_match_whole_words_only() -> None:
    from tierserve.policy.risk import assess_risk

    tenant = resolve_tenant(POLICY, None)
    calm = assess_risk(POLICY.risk, "He threatens nothing.", tenant, session_escalated=False)
    assert "keyword:HR" not in calm.factors
    hr = assess_risk(
        POLICY.risk,
        "Question for hr about leave",
        tenant,
        session_escalated=False,
    )
    assert "keyword:HR" in hr.factors
