"""Counterfactual replay of real decision records (made by the service over scripted
engines) under candidate policies."""

from pathlib import Path

from tests.fakes import FAQ, SUPPORT, ListRecorder, complete, request, support_service
from tierserve.api.protocol import CallerContext
from tierserve.evaluate.replay import replay
from tierserve.observe.record import DecisionRecord
from tierserve.policy.spec import Policy


def with_faq_thresholds(small: float, medium: float) -> Policy:
    data = SUPPORT.model_dump(mode="json", by_alias=True)
    faq = next(r for r in data["routes"] if r["name"] == "faq")
    faq["ladder"][0]["min_confidence"] = small
    faq["ladder"][1]["min_confidence"] = medium
    data["version"] = "candidate"
    return Policy.model_validate(data)


async def records(tmp_path: Path, small_logprobs: tuple[float, ...]) -> list[DecisionRecord]:
    recorder = ListRecorder()
    chat, _, _ = support_service(tmp_path, recorder=recorder, small_logprobs=small_logprobs)
    await complete(chat, request(FAQ))
    return recorder.records


async def test_a_lower_threshold_keeps_an_escalated_request_on_the_small_tier(
    tmp_path: Path,
) -> None:
    logged = await records(tmp_path, small_logprobs=(-3.0,))  # conf 0.05: small -> medium
    assert logged[0].answered_by == "medium"
    result = replay(with_faq_thresholds(0.01, 0.55), logged, {"small": 0.6, "medium": 0.8})
    assert result["transitions"] == {"medium->small": 1}
    # Only the small tier's recorded cost is walked (medium is free in this config).
    assert result["cost_after"] == logged[0].steps[0].cost_usd
    assert result["cost_before"] == logged[0].cost_usd
    assert result["expected_quality_before"] == 0.8 and result["expected_quality_after"] == 0.6
    unchanged = replay(SUPPORT, logged)
    assert unchanged["answer_source_changed"] == 0 and unchanged["unknown"] == 0


async def test_a_tier_never_tried_makes_the_outcome_unknown(tmp_path: Path) -> None:
    logged = await records(tmp_path, small_logprobs=(-0.01,))  # small accepted, medium untried
    result = replay(with_faq_thresholds(0.999, 0.55), logged)
    assert result["unknown"] == 1 and result["transitions"] == {"small->unknown": 1}
    # Nothing is guessed: the totals leave the unknown request out, and say so.
    assert result["totals_over_known_requests"] == 0 and result["cost_after"] == 0
    assert "medium was never tried" in replay_reason(with_faq_thresholds(0.999, 0.55), logged)


def replay_reason(policy: Policy, logged: list[DecisionRecord]) -> str:
    from tierserve.evaluate.replay import replay_one

    return replay_one(policy, logged[0]).reason


async def test_cache_hits_and_pinned_requests_are_counted_not_replayed(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, _, _ = support_service(tmp_path, recorder=recorder)
    keyed = CallerContext(api_key="sk-app-1")
    await complete(chat, request(FAQ), keyed)
    await complete(chat, request(FAQ), keyed)  # a cache hit
    await complete(chat, request(FAQ, model="tierserve/large"))
    result = replay(SUPPORT, recorder.records)
    assert result["skipped"] == {"cache_hit": 1, "pinned_tier": 1} and result["replayed"] == 1


async def test_a_request_cut_at_its_session_floor_replays_on_the_same_ladder(
    tmp_path: Path,
) -> None:
    recorder = ListRecorder()
    chat, engines, _ = support_service(tmp_path, recorder=recorder, small_logprobs=(-3.0,))
    engines["medium"].logprobs = (-3.0,)  # medium unsure too: the session's floor is large
    session = CallerContext(session_id="s-1")
    await complete(chat, request(FAQ), session)
    await complete(chat, request("And my username?"), session)
    later = recorder.records[1]
    assert later.session_floor == "large" and [s.tier for s in later.steps] == ["large"]
    result = replay(SUPPORT, recorder.records)
    assert result["unknown"] == 0 and result["answer_source_changed"] == 0
