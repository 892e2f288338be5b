"""Task sets and checkers; the collector's rows and its resume (against a scripted HTTP
transport: the real run is `tierserve eval collect` on the stack)."""

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tierserve.errors import TierserveError
from tierserve.evaluate import collect as collect_module
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.tasks import CHOICE_SCHEMA, check, load_task_set
from tierserve.policy.step import Outcome, Step
from tierserve.validate import ValidationResult


def test_gsm8k_and_gpqa_come_from_the_package_with_their_answers() -> None:
    gsm8k = load_task_set("gsm8k")
    assert len(gsm8k) == 1319 and gsm8k[0].expected == "18" and gsm8k[0].checker == "numeric"
    gpqa = load_task_set("gpqa")
    assert len(gpqa) == 198 and {item.expected for item in gpqa} == set("ABCD")
    assert load_task_set("gpqa")[5].prompt == gpqa[5].prompt  # the choice order is fixed


@pytest.mark.parametrize(
    ("checker", "expected", "answer", "right"),
    [
        ("numeric", "18", "9 eggs at $2 is $18.\nAnswer: 18", True),
        ("numeric", "1000", "Answer: $1,000.", True),
        ("numeric", "18", "Answer: 18.5", False),
        ("numeric", "18", "I cannot tell.", False),
        ("numeric", "3", "2 + 1 = 3, so 3 bolts", True),
        ("choice", "B", "B", True),
        ("choice", "B", "The answer is C.", False),
        ("choice", "B", '{"answer": "B"}', True),
        ("choice", "B", '{ "answer" : "D" }', False),
        ("choice", "B", '["B"]', False),
    ],
)
def test_checkers(checker: str, expected: str, answer: str, right: bool) -> None:
    assert check(checker, expected, answer) == float(right)


def _stack(calls: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            ids = ["tierserve", "tierserve/small", "tierserve/large"]
            return httpx.Response(200, json={"data": [{"id": i} for i in ids]})
        body: dict[str, Any] = json.loads(request.content)
        tier = body["model"].split("/")[1]
        calls.append(tier)
        text = "Answer: 18" if tier == "large" else "Answer: 7"
        if "response_format" in body:  # a structured item: answer the schema's way
            assert body["response_format"]["json_schema"]["schema"] == CHOICE_SCHEMA
            text = '{"answer": "A"}'
        structured = "response_format" in body
        step = Step(
            tier=tier,
            outcome=Outcome.ACCEPT,
            reason="conf=0.90 => accept",
            validations=(ValidationResult("schema", True),) if structured else (),
            latency_s=1.5,
            prompt_tokens=90,
            completion_tokens=40,
            signals={"conf_q10": 0.3 if tier == "small" else 0.9},
        ).model_dump(mode="json")
        meta = {"cost_usd": 0.001 if tier == "small" else 0.01, "steps": [step]}
        return httpx.Response(
            200, json={"choices": [{"message": {"content": text}}], "tierserve": meta}
        )

    return httpx.MockTransport(handle)


def _use(monkeypatch: pytest.MonkeyPatch, transport: httpx.MockTransport) -> None:
    """The collector's HTTP client talks to ``transport`` instead of a stack."""
    real_client = httpx.AsyncClient
    monkeypatch.setattr(
        collect_module.httpx,
        "AsyncClient",
        lambda **kwargs: real_client(transport=transport, **kwargs),
    )


def test_collect_writes_a_row_per_item_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    _use(monkeypatch, _stack(calls))
    items = load_task_set("gsm8k")[:3]
    out = tmp_path / "outcomes.jsonl"
    run = {"source": "gsm8k", "progress": False}
    assert collect_module.collect("http://stack", items[:2], out, **run) == 2  # type: ignore[arg-type]
    assert collect_module.collect("http://stack", items, out, **run) == 1  # type: ignore[arg-type]
    assert calls == ["small", "large"] * 3  # the first two items were not asked again
    outcomes = OutcomeSet.read(out)
    assert outcomes.tiers == ("small", "large")
    first = outcomes.rows[0]
    assert first.outcomes["large"].quality == 1.0 and first.outcomes["small"].quality == 0.0
    assert first.outcomes["small"].signals == {"conf_q10": 0.3}
    assert first.outcomes["small"].latency_s == 1.5 and first.labels.expected == "18"


def test_collect_asks_several_items_at_once_and_writes_each_row_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    _use(monkeypatch, _stack(calls))
    items = load_task_set("gsm8k")[:7]
    out = tmp_path / "outcomes.jsonl"
    added = collect_module.collect(
        "http://stack", items, out, source="gsm8k", concurrency=3, progress=False
    )
    assert added == 7 and sorted(calls) == ["large"] * 7 + ["small"] * 7
    assert [row.id for row in OutcomeSet.read(out).rows] == [item.id for item in items]
    with pytest.raises(TierserveError, match="concurrency must be at least 1"):
        collect_module.collect("http://stack", items, out, source="gsm8k", concurrency=0)


def test_a_structured_item_is_asked_with_its_schema_and_its_schema_check_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    _use(monkeypatch, _stack(calls))
    gpqa = load_task_set("gpqa")[:1]
    out = tmp_path / "outcomes.jsonl"
    collect_module.collect("http://stack", gpqa, out, source="gpqa", progress=False)
    row = OutcomeSet.read(out).rows[0]
    assert row.labels.structured
    assert {o.valid_schema for o in row.outcomes.values()} == {True}
    assert row.outcomes["small"].quality == float(gpqa[0].expected == "A")
    gsm8k = load_task_set("gsm8k")[:1]
    collect_module.collect("http://stack", gsm8k, out, source="gsm8k", progress=False)
    plain = OutcomeSet.read(out).rows[1]
    assert not plain.labels.structured and plain.outcomes["small"].valid_schema is None


def test_a_refused_item_stops_the_run_and_keeps_the_rows_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = load_task_set("gsm8k")[:6]
    calls: list[str] = []
    answering = _stack(calls)

    def handle(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["messages"][0] if request.method == "POST" else {}
        if asked.get("content") == items[2].prompt:
            return httpx.Response(503, json={"error": {"message": "tier unavailable"}})
        return answering.handler(request)  # type: ignore[no-any-return]

    _use(monkeypatch, httpx.MockTransport(handle))
    out = tmp_path / "outcomes.jsonl"
    with pytest.raises(TierserveError, match="refused gsm8k-0002: 503"):
        collect_module.collect(
            "http://stack", items, out, source="gsm8k", concurrency=2, progress=False
        )
    assert [row.id for row in OutcomeSet.read(out).rows] == ["gsm8k-0000", "gsm8k-0001"]


def test_a_stack_that_goes_away_is_a_clear_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = {"models": True}
    answering = _stack([])

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" or not up["models"]:
            raise httpx.ConnectError("connection refused", request=request)
        return answering.handler(request)  # type: ignore[no-any-return]

    _use(monkeypatch, httpx.MockTransport(handle))
    items, out = load_task_set("gsm8k")[:1], tmp_path / "outcomes.jsonl"
    with pytest.raises(TierserveError, match=r"lost the stack .* gsm8k-0000: ConnectError"):
        collect_module.collect("http://stack", items, out, source="gsm8k", progress=False)
    up["models"] = False
    with pytest.raises(TierserveError, match="cannot reach the stack at http://stack"):
        collect_module.collect("http://stack", items, out, source="gsm8k", progress=False)


def test_the_phrasings_source_asks_what_the_general_set_never_asks_in_its_words() -> None:
    from collections import Counter

    from tierserve.evaluate.tasks import check, load_task_set

    general = load_task_set("general")
    phrasings = load_task_set("phrasings")
    assert Counter(item.kind for item in phrasings) == {"fact": 50, "math": 50, "reason": 50}
    assert len({item.id for item in phrasings}) == 150
    # Another phrasing: no shared preamble or answer cue, and no question asked in both.
    assert not any("Answer with the answer only" in item.prompt for item in phrasings)
    asked = {item.prompt.rsplit("Question: ", 1)[-1].split("\n")[0] for item in general}
    assert not asked & {item.prompt for item in phrasings}
    # Each reference answer passes its own checker, and a wrong one does not.
    for item in phrasings:
        right = item.expected.partition("!")[0].split("|")[0]
        assert check(item.checker, item.expected, right) == 1.0, item.id
        assert check(item.checker, item.expected, "I am not sure") == 0.0, item.id
