"""Gateway replicas that share a real PostgreSQL: a second Serve app (two gateway replicas over
the running stack's tiers) keeps the decision log, review queue and session floors there; both
replicas are killed with SIGKILL and their successors know the session, and no committed record
is lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import STATE_DIR
from tests.integration.replicas import replica_pids
from tests.postgres import fresh_database
from tierserve.cli import main
from tierserve.config import StackConfig
from tierserve.evaluate.replay import replay
from tierserve.observe.decision_log import DecisionLog
from tierserve.policy.spec import Policy

APP = "shared"


@pytest.fixture(scope="module")
def shared_gateway(
    base_url: str, stack_config: StackConfig, postgres: tuple[str, int]
) -> Iterator[tuple[str, str]]:
    if os.environ.get("TIERSERVE_TEST_URL"):
        pytest.skip("deploys a second app into the stack's own Ray cluster (not a remote stack)")
    from ray import serve

    from tierserve.serve.app import build_gateway_app

    database = fresh_database(postgres)
    stack = stack_config.model_dump(mode="json")
    stack["gateway"]["deployment"] = {"num_replicas": 2, "max_ongoing_requests": 32}
    stack["observe"]["database_url"] = database
    stack["observe"]["metrics_dir"] = str(STATE_DIR / "shared-metrics")
    serve.run(
        build_gateway_app({"stack": stack, "tiers_app": "tierserve"}),
        name=APP,
        route_prefix=f"/{APP}",
    )
    yield f"{base_url}/{APP}", database
    serve.delete(APP)


def ask(url: str, question: str, session: str) -> dict[str, Any]:
    """One chat request in ``session``; retried while the gateway replicas are restarting."""
    body = {
        "model": "tierserve",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": 24,
        "temperature": 0,
        "metadata": {"task": "faq"},
    }
    deadline = time.monotonic() + 300
    while True:
        try:
            response = httpx.post(
                f"{url}/v1/chat/completions",
                json=body,
                headers={"x-session-id": session},
                timeout=300,
            )
            if response.status_code == 200:
                answer: dict[str, Any] = response.json()
                return answer
            problem = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            problem = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            pytest.fail(f"the shared gateway did not answer after its replicas died: {problem}")
        time.sleep(2)


def test_replicas_share_sessions_and_lose_no_record_when_killed(
    shared_gateway: tuple[str, str],
    unsure_question: tuple[str, float],
    policy: Policy,
    tmp_path: Path,
) -> None:
    url, database = shared_gateway
    question, _ = unsure_question
    first = ask(url, question, "shared-session")
    assert first["tierserve"]["tiers_tried"][:2] == ["small", "medium"]  # escalated

    victims = replica_pids(APP, "gateway")
    assert len(victims) == 2, f"expected two gateway replicas, found {victims}"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)  # both: whichever answered, its memory is gone

    # A successor replica knows the session's floor from the database: small is skipped.
    second = ask(url, "And how do I change my username?", "shared-session")
    assert "small" not in second["tierserve"]["tiers_tried"]
    assert any("session_escalated" in r for r in second["tierserve"]["plan"])
    assert not set(replica_pids(APP, "gateway")) & set(victims)

    # The record committed by a killed replica is read by `tierserve log` and by replay.
    out = tmp_path / "export.jsonl"
    assert main(["log", "export", "--db", database, "--out", str(out)]) == 0
    exported = out.read_text()
    assert first["id"] in exported and second["id"] in exported
    records = list(DecisionLog(database).query())
    replayed = replay(policy, records)
    assert replayed.unknown == 0 and replayed.answer_source_changed == 0, replayed
