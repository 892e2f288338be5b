"""What the service records per request, and the response cache around the ladder."""

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from tests.fakes import (
    FAQ,
    STACK_TIERS,
    ListRecorder,
    ScriptedEngine,
    chat_request,
    completion_json,
    support_service,
    three_tiers,
)
from tierserve.api.protocol import CallerContext
from tierserve.api.service import ChatService
from tierserve.errors import ConfigError, DecisionLogError
from tierserve.observe.decision_log import DecisionLog
from tierserve.observe.metrics import TierserveMetrics
from tierserve.observe.recorder import DurableRecorder
from tierserve.policy.spec import load_policy

ROOT = Path(__file__).resolve().parents[3]
PRICED = three_tiers(cost_per_million_tokens=100.0)


def support(
    tmp_path: Path, recorder: object = None, small_logprobs: tuple[float, ...] = (-0.01,)
) -> tuple[ChatService, dict[str, ScriptedEngine]]:
    chat, engines, _ = support_service(
        tmp_path,
        config=PRICED,
        recorder=recorder,  # type: ignore[arg-type]
        small_logprobs=small_logprobs,
        answers={
            "small": "Go to Settings.",
            "medium": "medium answer",
            "large": "Open Settings, then Email.",
        },
    )
    return chat, engines


async def test_every_request_leaves_one_record_with_its_steps_and_cost(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, _ = support(tmp_path, recorder, small_logprobs=(-3.0,))
    body, _ = await completion_json(chat, chat_request(FAQ))
    (record,) = recorder.records
    assert record.request_id == body["id"] and record.route == "faq"
    assert [s.tier for s in record.steps] == ["small", "medium"]
    assert record.steps[0].escalation_reason == "low_confidence"
    # small: 7 prompt + 1 completion tokens at $100 per million; medium costs nothing here.
    assert record.cost_usd == pytest.approx(8 * 100.0 / 1e6)
    assert body["tierserve"]["cost_usd"] == record.cost_usd
    assert record.latency.inference_s == pytest.approx(0.04)  # the engines' own 0.02 s each
    assert record.latency.total_s > record.latency.policy_s > 0
    assert record.prompt == FAQ and len(record.prompt_sha256) == 64
    # How the plan decided, as typed fields beside the rendered reason codes.
    assert (record.task, record.task_source, record.task_probability) == ("faq", "classifier", 0.9)
    assert record.kind is None and record.skipped_tiers == []
    assert "task=faq(p=0.90)" in record.plan


APP_KEY = CallerContext(api_key="sk-app-1")  # a key the policy does not know: its own scope


async def test_personal_data_is_redacted_from_the_logged_prompt(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, _ = support(tmp_path, recorder)
    await completion_json(
        chat, chat_request(FAQ + " Mine is jo@example.com, card 4111 1111 1111 1111.")
    )
    (record,) = recorder.records
    assert record.prompt == FAQ + " Mine is [email], card [card]."
    assert "jo@example.com" not in record.model_dump_json()
    assert record.pii == ["card", "email"]


async def test_a_repeated_faq_is_answered_from_the_cache(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, engines = support(tmp_path, recorder)
    first, _ = await completion_json(chat, chat_request(FAQ), APP_KEY)
    second, headers = await completion_json(chat, chat_request(FAQ + "  "), APP_KEY)
    assert len(engines["small"].requests) == 1
    assert second["choices"][0]["message"]["content"] == "Go to Settings."
    meta = second["tierserve"]
    assert meta["cache"] == "hit" and meta["cached_from"] == first["id"]
    assert meta["tier"] == "small" and meta["steps"] == [] and meta["cost_usd"] == 0
    assert meta["models"] == first["tierserve"]["models"] == {"small": "fake/small"}
    assert second["usage"]["total_tokens"] == 0 and headers["x-tierserve-cache"] == "hit"
    assert [r.cache for r in recorder.records] == ["miss", "hit"]


async def test_no_cache_other_callers_and_streams_get_fresh_answers(tmp_path: Path) -> None:
    chat, engines = support(tmp_path)
    await completion_json(chat, chat_request(FAQ), APP_KEY)
    no_cache = CallerContext(api_key=APP_KEY.api_key, cache_control="no-cache")
    fresh, _ = await completion_json(chat, chat_request(FAQ), no_cache)
    assert fresh["tierserve"]["cache"] == "bypass"
    other, _ = await completion_json(
        chat, chat_request(FAQ), CallerContext(api_key="sk-internal-demo")
    )
    assert other["tierserve"]["cache"] == "miss"
    another_key, _ = await completion_json(
        chat, chat_request(FAQ), CallerContext(api_key="sk-app-2")
    )
    assert another_key["tierserve"]["cache"] == "miss"
    reply = await chat.stream(chat_request(FAQ, stream=True), APP_KEY)
    chunks = [chunk async for chunk in reply.chunks]
    assert [c.tierserve.cache for c in chunks if c.tierserve] == ["bypass"]
    assert len(engines["small"].requests) == 5


async def test_callers_without_a_key_share_no_answers(tmp_path: Path) -> None:
    # Else anyone could learn whether a prompt was asked before (and by whom: cached_from).
    chat, engines = support(tmp_path)
    first, _ = await completion_json(chat, chat_request(FAQ))
    second, _ = await completion_json(chat, chat_request(FAQ))
    assert first["tierserve"]["cache"] == second["tierserve"]["cache"] == "bypass"
    assert second["tierserve"]["cached_from"] is None
    assert len(engines["small"].requests) == 2


async def test_policy_sensitive_routes_are_never_cached(tmp_path: Path) -> None:
    chat, engines = support(tmp_path)
    text = "Draft a reply to a customer threatening legal action over a late refund."
    for _ in range(2):
        body, _ = await completion_json(
            chat, chat_request(text), CallerContext(task_hint="policy_sensitive")
        )
        assert body["tierserve"]["cache"] == "off"
        assert body["tierserve"]["outcome"] == "human_review"
    assert sum(len(e.requests) for e in engines.values()) == 2


async def test_no_answer_without_its_record(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.sqlite")
    log.close()  # every write now fails
    chat, _ = support(tmp_path, DurableRecorder(log, TierserveMetrics(CollectorRegistry())))
    with pytest.raises(DecisionLogError, match="could not be written") as caught:
        await completion_json(chat, chat_request(FAQ))
    assert caught.value.http_status == 503 and caught.value.retryable


def test_a_cacheable_policy_sensitive_route_must_be_chosen_explicitly(tmp_path: Path) -> None:
    text = (ROOT / "serve_configs/policies/support.yaml").read_text()
    risky = text.replace(
        "  - name: faq\n    tasks: [faq]\n", "  - name: faq\n    tasks: [faq, policy_sensitive]\n"
    )
    assert risky != text
    path = tmp_path / "policy.yaml"
    path.write_text(risky)
    for files in ("schemas", "routers"):  # the policy's relative files
        (tmp_path / files).symlink_to(ROOT / "serve_configs/policies" / files)
    with pytest.raises(ConfigError, match=r"set cache\.allow_policy_sensitive: true"):
        load_policy(path, STACK_TIERS)
    path.write_text(risky.replace("cache: {", "cache: {allow_policy_sensitive: true, "))
    assert load_policy(path, STACK_TIERS).routes


def test_a_version_2_record_naming_an_outcome_as_its_tier_reads_back_typed() -> None:
    """Records before version 3 put the outcome in answered_by when no tier's answer was
    returned; read back, the tier is None and the outcome still says why."""
    import json

    from tests.fakes import decision_record
    from tierserve.observe.decision_record import DecisionRecord

    reviewed = decision_record("r1", outcome="human_review")
    assert reviewed.answered_by is None and reviewed.answer_source == "human_review"
    as_written = {**reviewed.model_dump(mode="json"), "record_version": 2}
    as_written["answered_by"] = "human_review"
    assert DecisionRecord.stored(json.dumps(as_written)) == reviewed
    answered = decision_record("r2").model_dump(mode="json")
    read = DecisionRecord.stored(json.dumps({**answered, "record_version": 2}))
    assert read.answered_by == "small" and read.record_version == 3
