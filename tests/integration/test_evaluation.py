"""Offline evaluation against the real stack: collecting outcome rows from every tier, and
replaying the real decision log under the policy that made it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tierserve.config import StackConfig
from tierserve.evaluate.collect import collect
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.replay import replay
from tierserve.evaluate.tasks import load_task_set
from tierserve.observe.decision_log import DecisionLog, LogQuery
from tierserve.policy.spec import Policy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_collect_writes_every_tiers_outcome_with_its_signals(base_url: str, tmp_path: Path) -> None:
    items = [*load_task_set("gsm8k")[:2], load_task_set("gpqa")[0]]
    out = tmp_path / "outcomes.jsonl"
    run = {"source": "mixed", "max_tokens": 48, "progress": False}
    assert collect(base_url, items, out, concurrency=3, **run) == 3  # type: ignore[arg-type]
    assert collect(base_url, items, out, **run) == 0  # type: ignore[arg-type]
    data = OutcomeSet.read(out)
    assert data.tiers == ("small", "medium", "large")  # by the configured prices
    for row in data.rows:
        assert row.labels.expected == items[data.rows.index(row)].expected
        for outcome in row.outcomes.values():
            signals = outcome.signals
            assert outcome.quality in (0.0, 1.0) and outcome.cost > 0 and outcome.answer
            assert signals["tokens"] == outcome.completion_tokens > 0
            assert 0 < signals["conf_q0"] <= signals["conf_q10"] <= signals["conf_q50"] <= 1
            assert signals["sum_logprob"] <= signals["mean_logprob"] <= 0
    # The choice question is asked with its schema: every tier's answer is a schema-checked
    # letter, decoded under the constraint.
    choice = data.rows[2]
    assert choice.labels.structured and choice.labels.checker == "choice"
    for outcome in choice.outcomes.values():
        assert outcome.valid_schema is True
        assert json.loads(outcome.answer or "")["answer"] in ("A", "B", "C", "D")


def test_replaying_the_log_under_its_own_policy_reproduces_every_decision(
    http: httpx.Client, stack_config: StackConfig, policy: Policy
) -> None:
    started = time.time()
    questions = ["How do I reset my password?", "What is the capital of Japan?"]
    ids = []
    for question in questions:
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": "tierserve",
                "messages": [{"role": "user", "content": question}],
                "max_tokens": 24,
                "temperature": 0,
                "metadata": {"task": "faq"},
            },
            headers={"Cache-Control": "no-cache"},
        )
        assert response.status_code == 200
        ids.append(response.json()["id"])
    log = DecisionLog(stack_config.observe.decision_log_path)
    records = [r for r in log.query(LogQuery(since=started - 1)) if r.request_id in ids]
    assert len(records) == len(ids)
    result = replay(policy, records)
    assert result["replayed"] == len(ids) and result["unknown"] == 0
    assert result["answer_source_changed"] == 0 and result["route_changed"] == 0
    assert result["cost_after"] == pytest.approx(result["cost_before"])
