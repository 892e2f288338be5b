"""Counterfactual replay of real decision records (made by the service over scripted
engines) under candidate policies."""

from pathlib import Path

from tests.fakes import FAQ, SUPPORT, ListRecorder, chat_request, completion_json, support_service
from tierserve.api.protocol import CallerContext
from tierserve.evaluate.replay import replay
from tierserve.observe.decision_record import DecisionRecord
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
    await completion_json(chat, chat_request(FAQ))
    return recorder.records


async def test_a_lower_threshold_keeps_an_escalated_request_on_the_small_tier(
    tmp_path: Path,
) -> None:
    logged = await records(tmp_path, small_logprobs=(-3.0,))  # conf 0.05: small -> medium
    assert logged[0].answered_by == "medium"
    result = replay(with_faq_thresholds(0.01, 0.55), logged, {"small": 0.6, "medium": 0.8})
    assert result.transitions == {"medium->small": 1}
    # Only the small tier's recorded cost is walked (medium is free in this config).
    assert result.cost_after == logged[0].steps[0].cost_usd
    assert result.cost_before == logged[0].cost_usd
    assert result.expected_quality_before == 0.8 and result.expected_quality_after == 0.6
    unchanged = replay(SUPPORT, logged)
    assert unchanged.answer_source_changed == 0 and unchanged.unknown == 0


async def test_a_tier_never_tried_makes_the_outcome_unknown(tmp_path: Path) -> None:
    logged = await records(tmp_path, small_logprobs=(-0.01,))  # small accepted, medium untried
    result = replay(with_faq_thresholds(0.999, 0.55), logged)
    assert result.unknown == 1 and result.transitions == {"small->unknown": 1}
    # Nothing is guessed: the totals leave the unknown request out, and say so.
    assert result.totals_over_known_requests == 0 and result.cost_after == 0
    assert "medium was never tried" in replay_reason(with_faq_thresholds(0.999, 0.55), logged)


def replay_reason(policy: Policy, logged: list[DecisionRecord]) -> str:
    from tierserve.evaluate.replay import replay_one

    return replay_one(policy, logged[0]).reason


async def test_cache_hits_and_pinned_requests_are_counted_not_replayed(tmp_path: Path) -> None:
    recorder = ListRecorder()
    chat, _, _ = support_service(tmp_path, recorder=recorder)
    keyed = CallerContext(api_key="sk-app-1")
    await completion_json(chat, chat_request(FAQ), keyed)
    await completion_json(chat, chat_request(FAQ), keyed)  # a cache hit
    await completion_json(chat, chat_request(FAQ, model="tierserve/large"))
    result = replay(SUPPORT, recorder.records)
    assert result.skipped == {"cache_hit": 1, "pinned_tier": 1} and result.replayed == 1


async def test_a_request_cut_at_its_session_floor_replays_on_the_same_ladder(
    tmp_path: Path,
) -> None:
    recorder = ListRecorder()
    chat, engines, _ = support_service(tmp_path, recorder=recorder, small_logprobs=(-3.0,))
    engines["medium"].logprobs = (-3.0,)  # medium unsure too: the session's floor is large
    session = CallerContext(session_id="s-1")
    await completion_json(chat, chat_request(FAQ), session)
    await completion_json(chat, chat_request("And my username?"), session)
    later = recorder.records[1]
    assert later.session_floor == "large" and [s.tier for s in later.steps] == ["large"]
    result = replay(SUPPORT, recorder.records)
    assert result.unknown == 0 and result.answer_source_changed == 0


async def test_regenerated_steps_turn_unknown_into_a_judged_answer(tmp_path: Path) -> None:
    """A replay that re-runs: the medium tier the record never tried, asked again, is judged
    by the kernel as serving would; both answers are checked against their label."""
    from tierserve.evaluate.regenerate import Regenerated, RegeneratedReplay
    from tierserve.evaluate.tasks import TaskItem
    from tierserve.policy.step import Outcome, Step
    from tierserve.validate import ValidationResult

    logged = await records(tmp_path, small_logprobs=(-0.01,))  # small accepted
    candidate = with_faq_thresholds(0.999, 0.55)
    medium = Step(
        tier="medium",
        outcome=Outcome.ACCEPT,
        reason="pinned",
        confidence=0.9,
        cost_usd=0.002,
        latency_s=1.5,
        validations=(ValidationResult("non_empty", True),),
    )
    request_id = logged[0].request_id
    found = RegeneratedReplay(
        {
            (request_id, "small"): Regenerated(request_id, "small", logged[0].steps[0], "wrong"),
            (request_id, "medium"): Regenerated(request_id, "medium", medium, "Go to Settings."),
        },
        {"prompt not logged (log_prompts hash or omit)": 2},
    )
    result = replay(candidate, logged, None, found.steps())
    assert result.unknown == 0 and result.transitions == {"small->medium": 1}
    assert result.upstream_calls_before == 1 and result.upstream_calls_after == 2
    assert result.escalated_after == 1
    assert result.cost_after == logged[0].steps[0].cost_usd + 0.002
    label = TaskItem("faq-1", FAQ, "Settings", "contains", "faq")
    scores = found.scores(result.requests, {request_id: FAQ}, {FAQ: label})
    assert (scores.labelled_requests, scores.quality_before, scores.quality_after) == (1, 0.0, 1.0)
    # Every tier answered and labelled: an outcome row to calibrate the next version on.
    (row,) = found.outcome_rows(logged, ("small", "medium"), {FAQ: label})
    assert row.outcomes["medium"].quality == 1.0 and row.outcomes["small"].quality == 0.0
    assert found.outcome_rows(logged, ("small", "medium", "large"), {FAQ: label}) == []


def test_only_logged_unstructured_prompts_are_replayable() -> None:
    from tests.fakes import decision_record
    from tierserve.evaluate.regenerate import replayable

    plain = decision_record("r1").model_copy(update={"prompt": "What is 2 + 2?", "pii": []})
    assert replayable(plain, accept_redacted=False) is None
    hashed = plain.model_copy(update={"prompt": None})
    assert "not logged" in str(replayable(hashed, accept_redacted=False))
    redacted = plain.model_copy(update={"prompt": "mail [email]", "pii": ["email"]})
    assert "redacted" in str(replayable(redacted, accept_redacted=False))
    assert replayable(redacted, accept_redacted=True) is None
    structured = plain.model_copy(update={"output_schema": "invoice"})
    assert "structured" in str(replayable(structured, accept_redacted=True))


async def test_replay_plans_each_logged_request_as_serving_planned_it(tmp_path: Path) -> None:
    """Serving and replay plan through the same function: under the policy that served them,
    every logged request gets its logged route, and its ladder leaves out exactly the tiers the
    plan skipped (a regulated tenant's, personal data's, the complexity cut's)."""
    from tierserve.evaluate.replay import candidate_ladder

    recorder = ListRecorder()
    chat, _, _ = support_service(tmp_path, recorder=recorder)
    asked = [
        (FAQ, None),
        (FAQ, "sk-northbank-demo"),
        ("My card is 4111 1111 1111 1111, how do I change my email address?", None),
        ("Please ask for a refund of my last order", "sk-internal-demo"),
        ("Extract the name as JSON from this email: Hi, I am Ana Lopez.", None),
    ]
    for text, key in asked:
        await completion_json(chat, chat_request(text), CallerContext(api_key=key))
    assert len(recorder.records) == len(asked)
    assert any(r.skipped_tiers for r in recorder.records)
    for logged in recorder.records:
        route, ladder = candidate_ladder(SUPPORT, logged)
        climbed = [s.tier for s in ladder.steps if s.tier is not None]
        assert route == logged.route
        assert not set(climbed) & set(logged.skipped_tiers)
        assert {s.tier for s in logged.steps if s.tier} <= set(climbed)
