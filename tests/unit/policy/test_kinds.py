"""Question kinds: a classifier gives general requests a kind (fact, math, reason), routes match
on it with their own ladders, the plan says why, and a request of no clear kind (or a gateway
without an encoder) takes the route without kinds."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import ROOT, STACK_TIERS
from tests.fakes import policy_data as shipped_policy_data
from tierserve.errors import ConfigError
from tierserve.policy.kinds import KindDecision, QuestionKindsSpec, question_kind
from tierserve.policy.plan import RequestFacts, plan_route, route_for
from tierserve.policy.spec import RiskLevel, TaskClass, load_policy

# Two axes: 'sum' prompts point along the first, 'capital' prompts along the second.
KINDS = {
    "prefix": "Q: ",
    "suffix": "",
    "kinds": {"math": {"weights": [5.0, 0.0], "bias": 0.0}, "fact": {"weights": [0.0, 5.0]}},
}


class AxisEmbedder:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def embed(self, text: str) -> list[float]:
        self.asked.append(text)
        if "sum" in text:
            return [1.0, 0.0]
        return [0.0, 1.0] if "capital" in text else [0.5, 0.5]


def policy_data(**kinds: Any) -> dict[str, Any]:
    data = shipped_policy_data()
    data["question_kinds"] = {"file": "kinds.json", "min_probability": 0.6, **kinds}
    data["routes"] = [r for r in data["routes"] if "kinds" not in r]
    at = next(i for i, r in enumerate(data["routes"]) if r["name"] == "general")
    data["routes"][at:at] = [
        {
            "name": "general-math",
            "tasks": ["unknown"],
            "kinds": ["math"],
            "ladder": [{"tier": "medium", "validators": ["non_empty"]}],
        },
        {
            "name": "general-fact",
            "tasks": ["unknown"],
            "kinds": ["fact"],
            "ladder": [{"tier": "small", "validators": ["non_empty"]}],
        },
    ]
    return data


def written(tmp_path: Path, data: dict[str, Any]) -> Path:
    (tmp_path / "kinds.json").write_text(json.dumps(KINDS))
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_each_kind_takes_its_route_and_the_plan_says_why(tmp_path: Path) -> None:
    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    embedder = AxisEmbedder()
    math = plan_route(policy, RequestFacts("zorblat the sum of 3 and 4?"), embedder=embedder)
    fact = plan_route(policy, RequestFacts("zorblat capital of Peru?"), embedder=embedder)
    assert (math.route.name, math.first_action) == ("general-math", "medium")
    assert (fact.route.name, fact.first_action) == ("general-fact", "small")
    assert "kind=math(p=0.99)" in math.reasons and "kind=fact(p=0.99)" in fact.reasons
    assert embedder.asked[0] == "zorblat the sum of 3 and 4?"


def test_an_unclear_kind_and_a_missing_encoder_take_the_route_without_kinds(
    tmp_path: Path,
) -> None:
    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    unclear = plan_route(policy, RequestFacts("zorblat glim?"), embedder=AxisEmbedder())
    assert unclear.route.name == "general"
    assert any(
        r.startswith("kind: p(") and r.endswith(")=0.50<0.60 => none") for r in unclear.reasons
    )
    blind = plan_route(policy, RequestFacts("zorblat the sum of 3 and 4?"))
    assert blind.route.name == "general" and "kind: no encoder here => none" in blind.reasons


def test_requests_of_other_task_classes_are_given_no_kind(tmp_path: Path) -> None:
    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    embedder = AxisEmbedder()
    asked = RequestFacts("Extract the sum of the invoice as JSON")
    extraction = plan_route(policy, asked, embedder=embedder)
    assert extraction.task.task == "extraction" and not extraction.route.kinds
    assert embedder.asked == [] and not any(r.startswith("kind") for r in extraction.reasons)


def test_route_for_matches_kinds_and_falls_back(tmp_path: Path) -> None:
    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    assert route_for(policy, TaskClass.UNKNOWN, RiskLevel.LOW, "math").name == "general-math"
    assert route_for(policy, TaskClass.UNKNOWN, RiskLevel.LOW, None).name == "general"
    assert route_for(policy, TaskClass.UNKNOWN, RiskLevel.LOW, "other").name == "general"


def test_the_kinds_file_is_inlined_and_travels_as_data(tmp_path: Path) -> None:
    spec = load_policy(written(tmp_path, policy_data()), STACK_TIERS).question_kinds
    assert spec is not None and sorted(spec.kinds) == ["fact", "math"] and spec.prefix == "Q: "
    copy = QuestionKindsSpec.model_validate(spec.model_dump())
    decided = copy.decide([1.0, 0.0])
    assert (decided.kind, decided.reason) == ("math", "kind=math(p=0.99)")
    assert decided.probability == pytest.approx(0.99, abs=0.005)
    assert question_kind(copy, "faq", AxisEmbedder(), "sum") is None
    assert question_kind(copy, "unknown", AxisEmbedder(), None) == KindDecision(
        None, None, "kind: no prompt => none"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("question_kinds"), "matches kinds .* but the policy has no"),
        (lambda d: d["routes"][5]["kinds"].append("poetry"), "names kinds \\['poetry'\\]"),
        (lambda d: d["question_kinds"].update(tasks=["faq"]), "never gives a kind"),
        (lambda d: d["question_kinds"].update(tasks=["unknown", "chat"]), "unknown task classes"),
        (
            lambda d: [r.update(kinds=["fact"]) for r in d["routes"] if r["name"] == "general"],
            "no route without `kinds` serves task classes \\['unknown'\\]",
        ),
    ],
)
def test_inconsistent_kinds_are_refused_with_the_fix(
    tmp_path: Path, change: Any, message: str
) -> None:
    data = policy_data()
    assert data["routes"][5]["name"] == "general-math"
    change(data)
    with pytest.raises(ConfigError, match=message):
        load_policy(written(tmp_path, data), STACK_TIERS)


def test_a_missing_or_malformed_kinds_file_is_named(tmp_path: Path) -> None:
    path = written(tmp_path, policy_data())
    (tmp_path / "kinds.json").write_text(json.dumps({"kinds": {"math": {"weights": [1.0]}}}))
    with pytest.raises(ConfigError, match="at least two `kinds`"):
        load_policy(path, STACK_TIERS)
    (tmp_path / "kinds.json").unlink()
    with pytest.raises(ConfigError, match=r"question_kinds.file .*kinds.json"):
        load_policy(path, STACK_TIERS)


def test_the_shipped_policy_sends_each_kind_of_general_question_to_its_ladder() -> None:
    """The shipped classifier, over the real sentence encoder, on questions it never saw."""
    from tierserve.prompt_models.embedder import embedder_for

    policy = load_policy(ROOT / "serve_configs/policies/support.yaml", STACK_TIERS)
    embedder = embedder_for(policy)  # the shipped weights fit the encoder
    assert embedder is not None
    ask = "Answer with the answer only, no explanation.\nQuestion: {}\nAnswer:"
    expected = {
        "What is 417 minus 38?": "general-math",
        "What is the capital of Peru?": "general-fact",
        "Which ocean is the largest?": "general-fact",
        "Mia has 3 pens and buys 5 more. How many pens does Mia have?": "general-reason",
        "If today is Friday, what day will it be in 2 days?": "general-reason",
    }
    found = {
        question: plan_route(policy, RequestFacts(ask.format(question)), embedder=embedder)
        for question in expected
    }
    assert {q: p.route.name for q, p in found.items()} == expected
    assert all(p.task.task == "unknown" for p in found.values())


def test_replay_of_a_hashed_prompt_keeps_the_kind_the_gateway_logged(tmp_path: Path) -> None:
    from tests.fakes import decision_record
    from tierserve.evaluate.replay import candidate_ladder

    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    logged = decision_record("r1", route="general-math").model_copy(
        update={"task": "unknown", "prompt": None, "kind": "math", "kind_probability": 0.97}
    )
    route, ladder = candidate_ladder(policy, logged, AxisEmbedder())
    assert route == "general-math" and [s.tier for s in ladder.steps] == ["medium"]
    # Without a logged kind there is nothing to go on: the route without kinds.
    unkinded = logged.model_copy(update={"kind": None})
    assert candidate_ladder(policy, unkinded, AxisEmbedder())[0] == "general"


def test_a_record_logged_before_kinds_were_typed_replays_to_the_same_route(
    tmp_path: Path,
) -> None:
    """Version-1 records kept the kind only in the plan's reason codes; reading one upgrades
    it (observe/legacy_records.py), so a log kept across the change replays the same."""
    from tests.fakes import decision_record
    from tierserve.evaluate.replay import candidate_ladder
    from tierserve.observe.decision_record import DecisionRecord

    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    current = decision_record("r1", route="general-math").model_copy(
        update={
            "task": "unknown",
            "prompt": None,
            "task_source": "fallback",
            "kind": "math",
            "kind_probability": 0.97,
            "skipped_tiers": ["small"],
            "plan": [
                "task=unknown(no rule matched)",
                "kind=math(p=0.97)",
                "route=general-math",
                "eligibility => skip small",
            ],
        }
    )
    as_written = current.model_dump(mode="json")
    for field in ("record_version", "task_source", "task_probability", "kind"):
        del as_written[field]
    del as_written["kind_probability"], as_written["skipped_tiers"]
    upgraded = DecisionRecord.stored(json.dumps(as_written))
    assert upgraded == current
    assert candidate_ladder(policy, upgraded, AxisEmbedder()) == candidate_ladder(
        policy, current, AxisEmbedder()
    )


def test_policy_check_says_which_route_serves_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    from tierserve.cli import main

    assert main(["policy", "check", str(ROOT / "serve_configs/policies/support.yaml")]) == 0
    assert (
        "question kinds for tasks ['unknown'] (p >= 0.5): fact -> general-fact, "
        "math -> general-math, reason -> general-reason"
    ) in capsys.readouterr().out


def test_weights_that_do_not_fit_the_encoder_are_refused_before_serving(tmp_path: Path) -> None:
    from tests.fakes import FunctionEncoder
    from tierserve.prompt_models.embedder import embedder_for

    # Two-dimension kind weights beside the shipped task classifier's 384.
    policy = load_policy(written(tmp_path, policy_data()), STACK_TIERS)
    with pytest.raises(
        ConfigError,
        match=r"question_kinds was trained on all-MiniLM-L6-v2-int8 \(weights of length \[2\]\) "
        r"but the gateway's encoder is all-MiniLM-L6-v2-int8 with 384 dimensions",
    ):
        embedder_for(policy, FunctionEncoder(lambda text: [0.0] * 384))
    with pytest.raises(ConfigError, match=r"task_classifier was trained on all-MiniLM-L6-v2-int8"):
        embedder_for(policy, FunctionEncoder(lambda text: [0.0] * 2, name="all-MiniLM-L6-v2"))


def test_prompt_models_on_different_encoders_are_refused(tmp_path: Path) -> None:
    """The gateway embeds a prompt once for every prompt model: they must share an encoder."""
    path = written(tmp_path, policy_data())
    (tmp_path / "kinds.json").write_text(json.dumps({**KINDS, "encoder": "all-MiniLM-L6-v2"}))
    with pytest.raises(ConfigError, match=r"trained on different encoders .*retrain them on one"):
        load_policy(path, STACK_TIERS)


def test_a_model_trained_on_another_encoder_is_refused(tmp_path: Path) -> None:
    path = written(tmp_path, policy_data())
    (tmp_path / "kinds.json").write_text(json.dumps({**KINDS, "encoder": "bge-small-en"}))
    with pytest.raises(ConfigError, match=r"question_kinds.encoder.*all-MiniLM-L6-v2"):
        load_policy(path, STACK_TIERS)


def test_a_record_built_in_code_keeps_its_typed_facts() -> None:
    """Only stored records of the old format are read from their reason codes: a new record's
    probability is the classifier's own, not the two digits its reason code prints."""
    from tests.fakes import decision_record
    from tierserve.observe.decision_record import DecisionRecord

    fields = decision_record("r1").model_dump()
    del fields["record_version"]
    fields.update(kind="math", kind_probability=0.8792, plan=["kind=math(p=0.88)"])
    built = DecisionRecord(**fields)
    assert built.kind_probability == 0.8792
    assert DecisionRecord.stored(built.model_dump_json()) == built
