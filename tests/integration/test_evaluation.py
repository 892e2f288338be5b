"""Offline evaluation against the real stack: collecting outcome rows from every tier, and
replaying the real decision log under the policy that made it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes import STACK_TIERS
from tierserve.config import StackConfig
from tierserve.evaluate.collect import collect
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.replay import replay
from tierserve.evaluate.tasks import load_task_set
from tierserve.observe.decision_log import DecisionLog, LogQuery
from tierserve.policy.spec import Policy, load_policy

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


def asked(http: httpx.Client, text: str, task: str) -> str:
    """The request id of ``text`` asked of the cascade, uncached."""
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": "tierserve",
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 24,
            "temperature": 0,
            "metadata": {"task": task},
        },
        headers={"Cache-Control": "no-cache"},
    )
    assert response.status_code == 200
    request_id: str = response.json()["id"]
    return request_id


def test_replaying_the_log_under_its_own_policy_reproduces_every_decision(
    http: httpx.Client, stack_config: StackConfig, policy: Policy
) -> None:
    started = time.time()
    questions = ["How do I reset my password?", "What is the capital of Japan?"]
    ids = []
    for question in questions:
        ids.append(asked(http, question, "faq"))
    log = DecisionLog(stack_config.observe.decision_log_path)
    records = [r for r in log.query(LogQuery(since=started - 1)) if r.request_id in ids]
    assert len(records) == len(ids)
    result = replay(policy, records)
    assert result.replayed == len(ids) and result.unknown == 0
    assert result.answer_source_changed == 0 and result.route_changed == 0
    assert result.cost_after == pytest.approx(result.cost_before)


def test_the_closed_loop_replays_with_new_generations_and_writes_a_version(
    http: httpx.Client, base_url: str, stack_config: StackConfig, tmp_path: Path
) -> None:
    """Log -> replay under a candidate, regenerating on the live tiers the steps the log lacks
    -> labelled outcome rows for calibration, and the candidate written as a new version."""
    import shutil

    import yaml

    from tierserve.cli import main

    started = time.time()
    items = [i for i in load_task_set("general") if i.id.endswith(("-001", "-002"))][:4]
    ids = []
    for item in items:
        ids.append(asked(http, item.prompt, "unknown"))
    log = DecisionLog(stack_config.observe.decision_log_path)
    records = [r for r in log.query(LogQuery(since=started - 1)) if r.request_id in ids]
    assert len(records) == len(items) and all(r.prompt for r in records)
    export = tmp_path / "decisions.jsonl"
    export.write_text("".join(r.model_dump_json() + "\n" for r in records))
    # The candidate: one cascade for every general question (no kinds), the small tier first.
    assert stack_config.policy is not None
    folder = stack_config.policy.parent
    for files in ("schemas", "routers"):
        shutil.copytree(folder / files, tmp_path / files)
    data = yaml.safe_load(stack_config.policy.read_text())
    data["classifier_examples"] = str(folder / data["classifier_examples"])
    data.pop("question_kinds")
    data["routes"] = [r for r in data["routes"] if "kinds" not in r]
    general = next(r for r in data["routes"] if r["name"] == "general")
    general["ladder"] = [
        {"tier": "small", "validators": ["non_empty"], "min_confidence": 0.9},
        {"tier": "medium", "validators": ["non_empty"], "min_confidence": 0.5},
        {"tier": "large", "validators": ["non_empty"]},
    ]
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(data))
    out, rows, version = tmp_path / "replay.json", tmp_path / "rows.jsonl", tmp_path / "v2.yaml"
    args = [
        *("eval", "replay", str(export), "--policy", str(candidate), "--regenerate"),
        *("--url", base_url, "--labels", "general", "--max-tokens", "24"),
        *("--outcomes-out", str(rows), "--write-version", str(version), "--out", str(out)),
    ]
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["replayed"] == len(items) and result["unknown"] == 0
    assert result["regenerated"]["answers"] >= len(items)
    assert result["scores"]["labelled_requests"] == len(items)
    assert 0.0 <= result["scores"]["quality_after"] <= 1.0
    calls = result["upstream_calls_after"]
    assert calls >= sum(r["calls_after"] >= 1 for r in result["requests"]) == len(items)
    outcomes = OutcomeSet.read(rows)  # every tier asked of every labelled request
    assert len(outcomes.rows) == len(items) and outcomes.tiers == ("small", "medium", "large")
    assert all(o.signals.get("conf_q10") for r in outcomes.rows for o in r.outcomes.values())
    written = load_policy(version, STACK_TIERS)
    assert written.version == result["policy_written"]["version"]
    assert written.version.startswith(f"{data['version']}+replayed.")
    assert version.read_text().startswith("# Written by `tierserve eval replay`")
    # Resumed: a second run asks nothing again.
    stored = Path(result["regenerated"]["store"]).read_text().count("\n")
    assert main(args) == 0
    assert Path(result["regenerated"]["store"]).read_text().count("\n") == stored
