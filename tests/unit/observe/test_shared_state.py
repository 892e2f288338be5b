"""Two gateway replicas (two ChatServices, each with its own engine pool) over one real
PostgreSQL database: one decision log, one review queue, one floor per session."""

from pathlib import Path

from prometheus_client import CollectorRegistry

from tests.fakes import SUPPORT, THREE, FaqPredictor, ScriptedEngine, chat_request, completion_json
from tierserve.api.protocol import CallerContext
from tierserve.api.service import ChatService
from tierserve.api.sessions import DatabaseSessions
from tierserve.cli import main
from tierserve.evaluate.replay import replay
from tierserve.observe.database import open_engine
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.recorder import DurableRecorder
from tierserve.review import DatabaseReviewQueue


def replica(url: str, **texts: str) -> tuple[ChatService, dict[str, ScriptedEngine]]:
    """What a gateway replica builds from ``observe.database_url`` (serve/gateway.py)."""
    engine = open_engine(url)
    engines = {
        name: ScriptedEngine(name, text=texts.get(name, f"{name} answer"), logprobs=(-0.01,))
        for name in ("small", "medium", "large")
    }
    chat = ChatService(
        THREE,
        engines,
        policy=SUPPORT,
        predictor=FaqPredictor(),
        review_queue=DatabaseReviewQueue(engine),
        recorder=DurableRecorder(DecisionLog(engine), TierserveMetrics(CollectorRegistry())),
        sessions=DatabaseSessions(engine),
    )
    return chat, engines


async def test_a_session_keeps_its_floor_on_another_replica(postgres_url: str) -> None:
    first, first_engines = replica(postgres_url)
    second, second_engines = replica(postgres_url)
    first_engines["small"].logprobs = (-3.0,)  # unsure: this request escalates to medium
    session = CallerContext(session_id="s-42")
    body, _ = await completion_json(first, chat_request("How do I reset my password?"), session)
    assert body["tierserve"]["tiers_tried"] == ["small", "medium"]
    body, _ = await completion_json(second, chat_request("And my username?"), session)
    assert "small" not in body["tierserve"]["tiers_tried"]
    assert any("session_escalated" in r for r in body["tierserve"]["plan"])
    assert second_engines["small"].requests == []
    other, _ = await completion_json(
        second, chat_request("And my username?"), CallerContext(session_id="s-7")
    )
    assert other["tierserve"]["tiers_tried"] == ["small"]


async def test_a_floor_never_comes_down(postgres_url: str) -> None:
    sessions = DatabaseSessions(open_engine(postgres_url))
    await sessions.set_floor("s", "large")
    assert await DatabaseSessions(open_engine(postgres_url)).floor("s") == "large"
    assert await sessions.floor("unknown") is None


async def test_one_log_and_one_review_queue_for_every_replica(
    postgres_url: str, tmp_path: Path
) -> None:
    first, _ = replica(postgres_url)
    second, _ = replica(postgres_url, large="")  # an empty draft fails non_empty: review
    kept, _ = await completion_json(first, chat_request("How do I reset my password?"))
    reviewed, _ = await completion_json(second, chat_request("Draft a reply promising a refund"))
    assert reviewed["tierserve"]["outcome"] == "human_review"
    # Either replica's log and queue show both replicas' work.
    records = list(DecisionLog(postgres_url).query())
    assert [r.request_id for r in records] == [kept["id"], reviewed["id"]]
    (queued,) = DatabaseReviewQueue(open_engine(postgres_url)).read()
    assert queued["review_id"] == reviewed["tierserve"]["review_id"]
    assert queued["route"] == "policy-sensitive"
    # `tierserve log` and replay read the shared log like the embedded one.
    out = tmp_path / "export.jsonl"
    assert main(["log", "export", "--db", postgres_url, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert replay(SUPPORT, records).answer_source_changed == 0


def test_the_database_review_queue_keeps_only_its_newest_items(postgres_url: str) -> None:
    queue = DatabaseReviewQueue(open_engine(postgres_url), max_items=3)
    ids = [queue.submit({"request_id": f"r{index}"}) for index in range(5)]
    assert [item["review_id"] for item in queue.read()] == ids[-3:]
