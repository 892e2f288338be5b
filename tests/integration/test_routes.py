"""Each route family of serve_configs/policies/support.yaml through the real stack."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tierserve.config import StackConfig
from tierserve.policy.spec import Policy
from tierserve.review import JsonlReviewQueue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def meta_of(completion: Any) -> dict[str, Any]:
    return dict((completion.model_extra or {})["tierserve"])


def chat(client: OpenAI, text: str, max_tokens: int = 96, **options: Any) -> Any:
    return client.chat.completions.create(
        model="tierserve",
        messages=[{"role": "user", "content": text}],
        temperature=0,
        max_tokens=max_tokens,
        **options,
    )


@pytest.fixture(scope="module")
def northbank(base_url: str) -> OpenAI:
    return OpenAI(
        base_url=f"{base_url}/v1", api_key="sk-northbank-demo", timeout=600, max_retries=0
    )


def test_regulated_tenant_is_never_served_by_the_small_tier(northbank: OpenAI) -> None:
    meta = meta_of(chat(northbank, "How do I reset my password?"))
    assert meta["tenant"] == "northbank"
    assert "small" not in meta["tiers_tried"]
    assert "tenant=northbank(regulated) allows medium,large" in meta["plan"]
    with pytest.raises(openai.PermissionDeniedError, match="may not use tier 'small'"):
        northbank.chat.completions.create(
            model="tierserve/small", messages=[{"role": "user", "content": "hi"}]
        )


def test_policy_sensitive_request_ends_in_human_review_with_the_draft_queued(
    client: OpenAI, policy: Policy, stack_config: StackConfig
) -> None:
    completion = chat(
        client, "A customer threatens legal action unless we refund them. Draft our reply."
    )
    meta = meta_of(completion)
    assert meta["route"] == "policy-sensitive" and meta["outcome"] == "human_review"
    assert meta["tiers_tried"] == ["large"]
    assert completion.choices[0].message.content == policy.human_review_message
    queued = JsonlReviewQueue(stack_config.gateway.review_queue_path).read()
    item = next(q for q in queued if q["review_id"] == meta["review_id"])
    assert item["route"] == "policy-sensitive" and item["draft_tier"] == "large"
    assert item["draft"]


def test_drafting_starts_on_medium(client: OpenAI) -> None:
    meta = meta_of(chat(client, "Write a short reply thanking a customer for their feedback."))
    assert meta["route"] == "drafting" and meta["tiers_tried"][0] == "medium"
    assert meta["outcome"] == "accept"


def test_tool_use_hint_takes_the_tools_route(client: OpenAI) -> None:
    meta = meta_of(
        chat(client, "Where is parcel 9981?", extra_body={"metadata": {"task": "tool_use"}})
    )
    assert meta["route"] == "tools" and meta["tiers_tried"][0] == "small"
    assert "task=tool_use(hint)" in meta["plan"]


def test_session_keeps_the_tier_it_escalated_to(
    client: OpenAI, unsure_question: tuple[str, float]
) -> None:
    session = {"metadata": {"task": "faq", "session_id": "integration-session-1"}}
    first = meta_of(chat(client, unsure_question[0], extra_body=session))
    if len(first["tiers_tried"]) == 1:
        pytest.fail(f"the first request was meant to escalate: {first['reasons']}")
    second = meta_of(chat(client, "What is the capital of Japan?", extra_body=session))
    assert "small" not in second["tiers_tried"]
    assert any("session_escalated" in r for r in second["plan"])


def test_explain_returns_the_plan_without_generating(http: httpx.Client) -> None:
    body = {
        "model": "tierserve",
        "messages": [{"role": "user", "content": "Draft a reply offering a refund"}],
    }
    before = http.get("/healthz").json()["tiers"]
    plan = http.post("/v1/route/explain", json=body).json()
    assert plan["route"] == "policy-sensitive"
    assert plan["summary"] == "task=policy_sensitive,risk=high => large"
    assert [s.get("tier") or s.get("action") for s in plan["steps"]] == ["large", "human_review"]
    after = http.get("/healthz").json()["tiers"]
    assert after == before  # nothing ran on any tier
