"""Properties of whole responses (plan + ladder + gate) over random requests, tenants and
tier behaviour, with scripted engines (hypothesis)."""

import asyncio
import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import STACK_TIERS, THREE, ScriptedEngine, completion_json
from tierserve.api.protocol import CallerContext, ChatCompletionRequest
from tierserve.api.service import ChatService
from tierserve.policy.spec import Policy, TaskClass, load_policy

ROOT = Path(__file__).resolve().parents[3]
BASE = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)
TIERS = BASE.tiers
CONFIG = THREE
TEXTS = [
    "How do I reset my password?",
    "refund now",
    "extract the fields from this email",
    "draft a reply",
    "call the API",
    "bob@example.com",
    "hello",
    "legal",
]
ANSWERS = [
    "",
    "Paris.",
    '{"customer_id": "C-1", "issue_type": "billing", "severity": "low", "refund_requested": false}',
    "We guarantee a refund.",
    "not json",
]


class Predictor:
    def __init__(self, task: TaskClass, p: float) -> None:
        self.task, self.p = task, p

    def predict(self, text: str) -> tuple[TaskClass, float]:
        return self.task, self.p


tier_behaviour = st.tuples(st.sampled_from(ANSWERS), st.floats(-5, 0), st.booleans())
scenarios = st.fixed_dictionaries(
    {
        "allowed": st.one_of(st.none(), st.lists(st.sampled_from(TIERS), min_size=1, unique=True)),
        "regulated": st.booleans(),
        "text": st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3).map(" ".join),
        "task": st.sampled_from(list(TaskClass)),
        "p": st.floats(0, 1),
        "tiers": st.fixed_dictionaries({t: tier_behaviour for t in TIERS}),
    }
)


def respond(scenario: dict[str, object]) -> dict[str, object]:
    data = BASE.model_dump()
    data["tenants"].append(
        {
            "id": "random",
            "api_keys": ["sk-random"],
            "allowed_tiers": scenario["allowed"],
            "compliance": "regulated" if scenario["regulated"] else "standard",
        }
    )
    engines = {}
    for tier, (text, logprob, fails) in scenario["tiers"].items():  # type: ignore[attr-defined]
        error = RuntimeError("tier down") if fails else None
        engines[tier] = ScriptedEngine(tier, text=text, logprobs=(logprob,), error=error)
    chat = ChatService(
        CONFIG,
        engines,
        policy=Policy.model_validate(data),
        predictor=Predictor(scenario["task"], scenario["p"]),
    )  # type: ignore[arg-type]
    request = ChatCompletionRequest.model_validate(
        {"model": "tierserve", "messages": [{"role": "user", "content": scenario["text"]}]}
    )
    try:
        body, _ = asyncio.run(completion_json(chat, request, CallerContext(api_key="sk-random")))
    except Exception as error:  # only a 503 when every remaining tier failed is acceptable
        assert type(error).__name__ == "TierUnavailableError", error
        return {}
    return body["tierserve"]  # type: ignore[no-any-return]


@settings(max_examples=200, deadline=None)
@given(scenarios)
def test_responses_respect_the_tenant_and_explain_every_step(scenario) -> None:  # type: ignore[no-untyped-def]
    meta = respond(scenario)
    if not meta:
        return
    allowed = set(scenario["allowed"] or TIERS)
    assert set(meta["tiers_tried"]) <= allowed
    assert len(meta["reasons"]) == len(meta["steps"]) >= 1
    assert all(" => " in reason for reason in meta["reasons"])
    assert meta["policy_version"] == BASE.version and meta["plan"]
    tried = [TIERS.index(t) for t in meta["tiers_tried"]]
    assert tried == sorted(tried)  # a ladder never moves down
    attempted = [s for s in meta["steps"] if s["tier"]]
    for before, after in itertools.pairwise(attempted):
        assert contract(after) != contract(before)  # never "the same call again"


def contract(step: dict[str, object]) -> tuple[object, ...]:
    validators = frozenset(step["validators"])  # type: ignore[arg-type]
    return step["tier"], step["constrained"], validators, step["max_tokens"]
