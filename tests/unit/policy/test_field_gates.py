"""Field-level confidence: each JSON field judged by its value's tokens, gates that name the
field, a second opinion that compares the doubted fields, and replay re-judging the recorded
field signals under new thresholds without generating."""

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes import (
    SUPPORT,
    THREE,
    FaqPredictor,
    ListRecorder,
    ScriptedEngine,
    chat_request,
    completion_json,
    scripted_runner,
)
from tierserve.api.service import ChatService
from tierserve.engine.types import ChatMessage, GenerationRequest
from tierserve.evaluate.replay import replay_ladder
from tierserve.observe.privacy import kept_steps
from tierserve.policy.ladder import Answer, Ladder, decide
from tierserve.policy.runner import step_of
from tierserve.policy.spec import LadderStepSpec, Policy
from tierserve.policy.step import FailureKind, Outcome
from tierserve.review import JsonlReviewQueue
from tierserve.signals.fields import FieldReading, field_pattern, json_leaves, read_fields
from tierserve.validate import ValidationContext, ValidationResult

SURE, UNSURE = -0.01, -1.6  # probabilities 0.99 and 0.20
SCHEMA = {
    "type": "object",
    "properties": {"date": {"type": "string"}, "total": {"type": "number"}},
    "required": ["date", "total"],
}
REQUEST = GenerationRequest("r", (ChatMessage("user", "Invoice of 3 May 2026: 12.50"),), 64)


def tokens(
    date_logprob: float, total_logprob: float, date: str = "2026-05-03", key: str = "date"
) -> tuple:
    """A constrained answer as a tokenizer splits it: the grammar's structure near-certain, the
    values' tokens at the given log-probabilities."""
    return (
        ('{"', -0.001),
        (key, -0.001),
        ('":"', -0.001),
        (date[:4], date_logprob),
        (date[4:], SURE),
        ('","', -0.001),
        ("total", -0.001),
        ('":', -0.001),
        ("12.5", total_logprob),
        ("}", -0.001),
    )


def ladder(*steps: LadderStepSpec, on_exhausted: str = "accept_last") -> Ladder:
    return Ladder(
        steps=steps,
        on_exhausted=on_exhausted,  # type: ignore[arg-type]
        json_schema=SCHEMA,
        validation=ValidationContext(json_schema=SCHEMA, input_text="Invoice of 3 May 2026"),
    )


def test_a_fields_confidence_comes_from_its_value_tokens_only() -> None:
    answer = tokens(UNSURE, SURE)
    text = "".join(t for t, _ in answer)
    spans, at = [], 0
    for token, _ in answer:
        spans.append((at, at + len(token)))
        at += len(token)
    readings = {r.path: r for r in read_fields(text, [v for _, v in answer], spans)}
    assert set(readings) == {"date", "total"}
    assert readings["date"].confidence == pytest.approx(math.exp(UNSURE), abs=1e-6)
    assert readings["total"].confidence == pytest.approx(math.exp(SURE), abs=1e-6)
    # The whole answer's structural tokens outnumber the values' and are near-certain.
    assert readings["date"].tokens == 3  # "2026", "-05-03" and the closing quote's token
    assert readings["date"].digest != readings["total"].digest


def test_no_field_signals_without_spans_or_json() -> None:
    assert read_fields('{"a": 1}', [-0.1], []) == ()
    assert read_fields("not json", [-0.1], [(0, 8)]) == ()


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=5), children, max_size=3)
        ),
        max_leaves=12,
    ),
    st.sampled_from([None, 2]),
)
def test_every_leaf_is_found_at_its_place(value: object, indent: int | None) -> None:
    text = json.dumps(value, indent=indent)
    leaves = json_leaves(text)
    assert leaves is not None
    for leaf in leaves:
        written = text[leaf.start : leaf.end]
        if isinstance(leaf.value, str):
            assert json.loads('"' + written) == leaf.value  # the span ends at the closing quote
        else:
            assert json.loads(written) == leaf.value


def test_field_patterns_drop_array_positions() -> None:
    assert field_pattern("line_items[12].amount") == "line_items[].amount"
    gate = LadderStepSpec(tier="small", min_field_confidence=0.5, gated_fields=["line_items"])
    assert gate.field_threshold("line_items[].amount") == 0.5
    assert gate.field_threshold("total") is None


async def test_an_uncertain_field_escalates_naming_the_field() -> None:
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE)),
        "medium": ScriptedEngine("medium", tokens=tokens(SURE, SURE)),
    }
    result = await scripted_runner(engines).run(
        ladder(
            LadderStepSpec(tier="small", min_field_confidence=0.8),
            LadderStepSpec(tier="medium", min_field_confidence=0.8),
        ),
        REQUEST,
    )
    first, second = result.steps
    assert first.failure is FailureKind.LOW_FIELD_CONFIDENCE
    assert first.reason == "fields<0.80(date=0.20) => escalate medium"
    assert first.uncertain_fields == ("date",)
    # Whole-answer confidence at the tenth percentile would have accepted it: the structure
    # dominates the tokens.
    assert first.signals["conf_q10"] > 0.8
    assert second.outcome is Outcome.ACCEPT and second.reason.endswith(
        "fields>=0.80 => accept medium"
    )
    assert result.answered_by == "medium"


async def test_named_fields_only_are_gated() -> None:
    engines = {"small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE))}
    result = await scripted_runner(engines).run(
        ladder(LadderStepSpec(tier="small", min_field_confidence=0.8, gated_fields=["total"])),
        REQUEST,
    )
    assert result.outcome is Outcome.ACCEPT and result.steps[0].failure is None


async def test_human_review_lists_the_uncertain_fields() -> None:
    engines = {"small": ScriptedEngine("small", tokens=tokens(UNSURE, UNSURE))}
    result = await scripted_runner(engines).run(
        ladder(
            LadderStepSpec(tier="small", min_field_confidence=0.8),
            LadderStepSpec(action="human_review"),
        ),
        REQUEST,
    )
    assert result.outcome is Outcome.HUMAN_REVIEW
    assert result.steps[0].reason == "fields<0.80(date=0.20,total=0.20) => human_review"
    assert result.steps[0].uncertain_fields == ("date", "total")


async def test_the_last_step_marks_fields_still_in_doubt() -> None:
    engines = {"small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE))}
    result = await scripted_runner(engines).run(
        ladder(LadderStepSpec(tier="small", min_field_confidence=0.8)), REQUEST
    )
    assert result.outcome is Outcome.ACCEPT
    assert result.steps[-1].uncertain_fields == ("date",)
    assert result.steps[-1].reason.endswith("last step => accept")


async def test_a_review_threshold_marks_the_field_and_keeps_the_answer() -> None:
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE)),
        "medium": ScriptedEngine("medium", tokens=tokens(SURE, SURE)),
    }
    review = {"date": 0.8, "total": 0.5}
    result = await scripted_runner(engines).run(
        ladder(
            LadderStepSpec(tier="small", review_field_confidence=review),
            LadderStepSpec(tier="medium"),
        ),
        REQUEST,
    )
    assert result.answered_by == "small" and engines["medium"].requests == []
    assert result.steps[0].reason.endswith(",review(date=0.20) => accept small")
    assert result.steps[0].uncertain_fields == ("date",)  # total (0.99) is above its own


def test_the_most_specific_review_threshold_applies() -> None:
    step = LadderStepSpec(
        tier="small", review_field_confidence={"line_items": 0.5, "line_items[].amount": 0.9}
    )
    assert step.review_threshold("line_items[].amount") == 0.9
    assert step.review_threshold("line_items[].sku") == 0.5
    assert step.review_threshold("total") == 0.0
    with pytest.raises(ValueError, match="less than or equal to 1"):
        LadderStepSpec(tier="small", review_field_confidence={"total": 1.5})


def second_opinion() -> Ladder:
    return ladder(
        LadderStepSpec(tier="small", min_field_confidence=0.8),
        LadderStepSpec(tier="medium", min_field_confidence=0.8, accept_on_agreement=True),
        LadderStepSpec(tier="large"),
    )


async def test_agreement_on_the_doubted_field_accepts_the_second_answer() -> None:
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE)),
        # As unsure of the date as small, but of the same date: two tiers agree.
        "medium": ScriptedEngine("medium", tokens=tokens(UNSURE, SURE)),
        "large": ScriptedEngine("large", tokens=tokens(SURE, SURE)),
    }
    result = await scripted_runner(engines).run(second_opinion(), REQUEST)
    assert result.answered_by == "medium"
    assert result.steps[1].reason == "conf=0.20,agree=ok(date),fields>=0.80 => accept medium"
    assert result.steps[1].second_opinion and not result.steps[0].second_opinion
    assert engines["large"].requests == []


async def test_disagreement_escalates_and_is_counted_as_a_call() -> None:
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE)),
        "medium": ScriptedEngine("medium", tokens=tokens(SURE, SURE, date="2026-03-05")),
        "large": ScriptedEngine("large", tokens=tokens(SURE, SURE)),
    }
    result = await scripted_runner(engines).run(second_opinion(), REQUEST)
    assert result.steps[1].failure is FailureKind.DISAGREEMENT
    assert result.steps[1].reason == "agree=fail(date) => escalate large"
    assert result.steps[1].uncertain_fields == ("date",)
    assert result.tiers_tried == ("small", "medium", "large")
    assert result.answered_by == "large"


async def test_replay_rejudges_recorded_fields_under_new_thresholds() -> None:
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(-0.5, SURE)),  # date at 0.61
        "medium": ScriptedEngine("medium", tokens=tokens(SURE, SURE)),
    }
    served = ladder(
        LadderStepSpec(tier="small", min_field_confidence=0.8),
        LadderStepSpec(tier="medium", min_field_confidence=0.8),
    )
    result = await scripted_runner(engines).run(served, REQUEST)
    assert result.answered_by == "medium"
    looser = ladder(
        LadderStepSpec(tier="small", min_field_confidence=0.6),
        LadderStepSpec(tier="medium", min_field_confidence=0.6),
    )
    walked = replay_ladder(looser, result.steps)
    assert walked.answered == "small"
    assert walked.reasons == ("conf=0.61,fields>=0.60 => accept small",)
    # A record without field signals cannot be judged per field: unknown, not accepted.
    bare = tuple(step.model_copy(update={"fields": ()}) for step in result.steps)
    assert replay_ladder(looser, bare).answered == "unknown"


def gated_service(
    tmp_path: Path, recorder: ListRecorder, key: str = "date", **policy: object
) -> tuple[ChatService, JsonlReviewQueue]:
    """The support policy with a field gate of 0.8 on every extraction step, every tier unsure
    of the date."""
    data = {**SUPPORT.model_dump(by_alias=True), **policy}
    route = next(r for r in data["routes"] if r["name"] == "extraction")
    for step in route["ladder"]:
        step["min_field_confidence"] = 0.8
    queue = JsonlReviewQueue(tmp_path / "review.jsonl")
    engines = {
        n: ScriptedEngine(n, tokens=tokens(UNSURE, SURE, key=key))
        for n in ("small", "medium", "large")
    }
    chat = ChatService(
        THREE,
        engines,
        policy=Policy.model_validate(data),
        predictor=FaqPredictor(),
        recorder=recorder,
        review_queue=queue,
    )
    return chat, queue


def invoice(schema: dict[str, object]) -> dict[str, object]:
    return chat_request(
        "Invoice of 3 May 2026: 12.50",  # no "extract": the schema decides
        response_format={"type": "json_schema", "json_schema": {"name": "i", "schema": schema}},
    )


async def test_a_callers_schema_through_the_service_marks_and_logs_its_doubted_fields(
    tmp_path: Path,
) -> None:
    """Medium is unsure of the date, large too; large's answer is returned with `date`
    marked, and the record keeps every step's field readings."""
    recorder = ListRecorder()
    chat, _ = gated_service(tmp_path, recorder)
    body, _ = await completion_json(chat, invoice(SCHEMA))
    meta = body["tierserve"]
    assert meta["route"] == "extraction" and meta["tiers_tried"] == ["medium", "large"]
    assert meta["reasons"][0] == "fields<0.80(date=0.20) => escalate large"
    assert meta["outcome"] == "accept" and meta["uncertain_fields"] == ["date"]
    (logged,) = recorder.records
    assert [f.path for f in logged.steps[-1].fields] == ["date", "total"]
    assert logged.uncertain_fields == ("date",)


async def test_a_policy_that_keeps_prompts_hashed_keeps_no_field_name_of_a_callers_schema(
    tmp_path: Path,
) -> None:
    """A caller's field names are its text: with log_prompts 'hash' the decision log and the
    review queue name them by digests (stable across requests, so replay still re-judges
    them), while the caller's own response names them as sent."""
    secret = "canary0f3e2d1c"
    schema = {
        "type": "object",
        "properties": {secret: {"type": "string"}, "total": {"type": "number"}},
        "required": [secret, "total"],
    }
    recorder = ListRecorder()
    chat, _ = gated_service(tmp_path, recorder, secret, log_prompts="hash")
    answered, headers = await completion_json(chat, invoice(schema))
    assert answered["tierserve"]["uncertain_fields"] == [secret]
    # The headers (which proxies log) say which check failed, not what the model wrote; the
    # caller's body keeps the detail in its steps.
    assert headers["x-tierserve-reasons"].startswith(f"copied=fail,fields<0.80({secret}=0.20)")
    assert answered["tierserve"]["reasons"][0].startswith("copied=fail,")
    validations = answered["tierserve"]["steps"][0]["validations"]
    assert next(v for v in validations if v["name"] == "copied")["detail"]
    extraction = next(
        r for r in SUPPORT.model_dump(by_alias=True)["routes"] if r["name"] == "extraction"
    )
    extraction["on_exhausted"] = "human_review"
    for step in extraction["ladder"]:
        step["min_field_confidence"] = 0.8
    routes = [
        extraction if r["name"] == "extraction" else r
        for r in SUPPORT.model_dump(by_alias=True)["routes"]
    ]
    reviewing, _ = gated_service(tmp_path, recorder, secret, log_prompts="hash", routes=routes)
    reviewed, _ = await completion_json(reviewing, invoice(schema))
    assert reviewed["tierserve"]["outcome"] == "human_review"

    first, second = recorder.records
    assert second.review_id and (tmp_path / "review.jsonl").read_text().count("\n") == 1
    kept = "\n".join(
        [first.model_dump_json(), second.model_dump_json(), (tmp_path / "review.jsonl").read_text()]
    )
    assert secret not in kept
    named = first.steps[0].fields[0].path
    assert named.startswith("#") and named == second.steps[0].fields[0].path
    # The value is not in the text either: the copied check fails, without its detail.
    assert first.steps[0].reason == f"copied=fail,fields<0.80({named}=0.20) => escalate large"
    assert first.uncertain_fields == (named,)
    assert [f.path for f in first.steps[0].fields][1] != "total"
    # Replay judges the digests as it judged the names.
    assert (
        replay_ladder(
            ladder(LadderStepSpec(tier="medium", constrained=True, min_field_confidence=0.1)),
            first.steps,
        ).answered
        == "medium"
    )


def test_hashed_records_keep_no_failed_checks_detail() -> None:
    """A failed check's detail can quote the answer (and the answer the prompt): where prompts
    are kept hashed only its name, its verdict and the fields it names stay."""
    quoting = ValidationResult("schema", False, "total: 'canary0f3e' is not a number", ("total",))
    climb = Ladder(
        (
            LadderStepSpec(tier="small", validators=["schema"], min_field_confidence=0.5),
            LadderStepSpec(tier="medium"),
        )
    )
    answer = Answer(
        0.9,
        (quoting, ValidationResult("grounding", True, "support=0.90")),
        (FieldReading("total", 0.3, 2, "d1"), FieldReading("vendor", 0.9, 2, "d2")),
    )
    verdict, _ = decide(climb, 0, answer)
    step = step_of(climb.steps[0], verdict, validations=answer.validations, fields=answer.fields)
    assert step.reason == (
        "schema=fail(total: 'canary0f3e' is not a number),fields<0.50(total=0.30)"
        " => escalate medium"
    )
    (registered,) = kept_steps([step], "hash", callers_schema=False)
    assert registered.reason == "schema=fail,fields<0.50(total=0.30) => escalate medium"
    assert [v.code for v in registered.validations] == ["schema=fail", "grounding=ok(support=0.90)"]
    assert registered.validations[0].fields == ("total",)
    (own,) = kept_steps([step], "omit", callers_schema=True)
    digest = own.validations[0].fields[0]
    assert digest.startswith("#") and own.fields[0].path == digest
    assert own.reason == f"schema=fail,fields<0.50({digest}=0.30) => escalate medium"
    assert own.uncertain_fields == (digest,)
    assert "total" not in own.model_dump_json() and "canary" not in own.model_dump_json()
    assert kept_steps([step], "redact", callers_schema=True) == [step]


async def test_a_gate_by_kind_of_value_applies_to_any_schemas_fields() -> None:
    """No field is named: the schema says `date` holds a date and `total` a number, and each
    kind has its own threshold."""
    engines = {
        "small": ScriptedEngine("small", tokens=tokens(UNSURE, UNSURE)),
        "medium": ScriptedEngine("medium", tokens=tokens(SURE, SURE)),
    }
    gates = {"date": 0.8, "number": 0.1}
    result = await scripted_runner(engines).run(
        ladder(
            LadderStepSpec(tier="small", field_gates=gates),
            LadderStepSpec(tier="medium", field_gates=gates),
        ),
        REQUEST,
    )
    first, second = result.steps
    assert {r.path: r.kind for r in first.fields} == {"date": "date", "total": "number"}
    assert first.reason == "fields<gates(date=0.20<0.80) => escalate medium"
    assert first.uncertain_fields == ("date",)  # total's 0.20 clears the number gate
    assert second.reason.endswith("fields>=gates => accept medium")
    # Replay re-judges the recorded fields by their recorded kinds.
    stricter = ladder(
        LadderStepSpec(tier="small", field_gates={"date": 0.1, "number": 0.5}),
        LadderStepSpec(tier="medium"),
    )
    replayed = replay_ladder(stricter, result.steps)
    assert replayed.reasons[0] == "fields<gates(total=0.20<0.50) => escalate medium"


async def test_a_named_field_overrides_its_kinds_gate() -> None:
    engines = {"small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE))}
    step = LadderStepSpec(
        tier="small", min_field_confidence=0.1, gated_fields=["date"], field_gates={"date": 0.8}
    )
    result = await scripted_runner(engines).run(ladder(step), REQUEST)
    assert result.outcome is Outcome.ACCEPT and result.steps[0].failure is None


async def test_a_review_threshold_by_kind_marks_the_field() -> None:
    engines = {"small": ScriptedEngine("small", tokens=tokens(UNSURE, SURE))}
    step = LadderStepSpec(tier="small", review_by_kind={"date": 0.8, "number": 0.8})
    result = await scripted_runner(engines).run(
        ladder(step, LadderStepSpec(tier="medium")), REQUEST
    )
    assert result.answered_by == "small"
    assert result.steps[0].reason.endswith(",review(date=0.20) => accept small")
    assert result.steps[0].uncertain_fields == ("date",)
