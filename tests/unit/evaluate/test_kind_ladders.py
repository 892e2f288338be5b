"""A ladder per question kind, chosen together: a kind whose cheap tier suffices stays there, a
kind only the top tier answers skips the tiers that only cost, and `eval calibrate --by-kind`
writes routes per kind and the classifier into a policy version that loads and routes."""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.fakes import ROOT, STACK_TIERS, FunctionEncoder, sum_axis
from tierserve.cli import main
from tierserve.errors import ConfigError
from tierserve.evaluate.calibrate import Objective
from tierserve.evaluate.kinds import (
    KindLadder,
    choose_kind_ladders,
    kind_ladder_choices,
    routed,
)
from tierserve.evaluate.outcomes import Labels, OutcomeRow, OutcomeSet, TierOutcome
from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import load_policy
from tierserve.prompt_models.encoder import PromptView

TIERS = ("small", "medium", "large")


def row(index: int, kind: str, right: dict[str, bool], confident: bool = True) -> OutcomeRow:
    costs = {"small": 1.0, "medium": 3.0, "large": 10.0}
    return OutcomeRow(
        id=f"{kind}-{index}",
        prompt=f"{kind} question {index}",
        split="train",
        labels=Labels(kind=kind),
        outcomes={
            t: TierOutcome(
                quality=float(right[t]), cost=costs[t], signals={"conf": 0.9 if confident else 0.2}
            )
            for t in TIERS
        },
    )


def two_kinds() -> OutcomeSet:
    """'easy': small always right; 'hard': only large right, and medium confidently wrong."""
    easy = [row(i, "easy", {"small": True, "medium": True, "large": True}) for i in range(6)]
    hard = [row(i, "hard", {"small": False, "medium": False, "large": True}) for i in range(6)]
    return OutcomeSet.of([*easy, *hard], TIERS)


def test_every_cheapest_first_shape_is_a_candidate() -> None:
    shapes = {c.tiers for c in kind_ladder_choices(TIERS, [0.5, float("inf")])}
    assert shapes == {
        ("small",),
        ("medium",),
        ("large",),
        ("small", "medium"),
        ("small", "large"),
        ("medium", "large"),
        ("small", "medium", "large"),
    }
    assert all(len(c.thresholds) == len(c.tiers) - 1 for c in kind_ladder_choices(TIERS, [0.5]))


def test_each_kind_gets_the_cheapest_ladder_that_keeps_top_quality() -> None:
    data = two_kinds()
    kinds = [r.labels.kind or "" for r in data.rows]
    ladders = choose_kind_ladders(data, kinds, "conf", Objective(quality_share=1.0), [0.5])
    assert ladders == {"easy": KindLadder(("small",), ()), "hard": KindLadder(("large",), ())}
    figures = routed(data, kinds, "conf", ladders)
    assert figures.quality == 1.0 and figures.cost == (6 * 1.0 + 6 * 10.0) / 12
    assert figures.calls_per_request == 1.0
    # One cascade for both would pay for small and medium on every hard question.
    assert figures.cost < data.cost("large")


def test_a_budget_buys_quality_where_it_is_cheapest() -> None:
    data = two_kinds()
    kinds = [r.labels.kind or "" for r in data.rows]
    ladders = choose_kind_ladders(data, kinds, "conf", Objective(max_cost=1.0), [0.5])
    assert ladders["easy"].tiers == ("small",) and routed(data, kinds, "conf", ladders).cost <= 1
    with pytest.raises(ConfigError, match="no ladders per kind meet the objective"):
        choose_kind_ladders(data, kinds, "conf", Objective(max_cost=0.5), [0.5])


def test_rows_without_kinds_are_refused_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = two_kinds()
    rows = [
        r.model_copy(update={"labels": Labels(), "split": ("train", "test")[i % 2]})
        for i, r in enumerate(data.rows)
    ]
    path = tmp_path / "outcomes.jsonl"
    OutcomeSet.of(rows, TIERS).write(path)
    assert main(["eval", "calibrate", str(path), "--by-kind"]) == 2
    error = capsys.readouterr().err
    assert "6 rows have no labels.kind (first: 'easy-0')" in error
    assert "eval collect general" in error and "Traceback" not in error


def test_calibrate_by_kind_writes_routes_that_the_gateway_rule_follows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the shipped general outcomes: the written version loads, has a route per kind, and a
    plan over the real encoder sends an arithmetic question to the arithmetic ladder."""
    from tierserve.prompt_models.embedder import embedder_for

    policies = ROOT / "serve_configs/policies"
    for name in ("schemas", "routers", "support-examples.jsonl", "support.yaml"):
        (shutil.copytree if (policies / name).is_dir() else shutil.copy)(
            policies / name, tmp_path / name
        )
    out, report = tmp_path / "by-kind.yaml", tmp_path / "report.json"
    code = main(
        [
            *("eval", "calibrate", str(ROOT / "benchmarks/results/outcomes_general.jsonl")),
            *("--by-kind", "--objective", "quality_share=1.0", "--route", "general"),
            *("--policy", str(tmp_path / "support.yaml"), "--out-policy", str(out)),
            *("--out", str(report)),
        ]
    )
    assert code == 0
    result = json.loads(report.read_text())
    assert set(result["ladders"]) >= {"fact", "math", "reason"}
    assert result["kind_classifier"]["test_accuracy"] > 0.9
    test = result["test"]
    assert test["routed_by_kind"]["cost"] < test["baselines"]["large_only"]["cost"]
    policy = load_policy(out, STACK_TIERS)
    assert policy.version == result["policy"]["version"] and "+by-kind." in policy.version
    names = [r.name for r in policy.routes]
    assert {"general-fact", "general-math", "general-reason"} <= set(names)
    assert names.index("general-math") < names.index("general")
    assert (tmp_path / "by-kind.general-kinds.json").is_file()
    assert "kinds" not in yaml.safe_load(out.read_text())["routes"][names.index("general")]
    embedder = embedder_for(policy)
    asked = "Answer with the answer only, no explanation.\nQuestion: What is 64 + 19?\nAnswer:"
    plan = plan_route(policy, RequestFacts(asked), embedder=embedder)
    assert plan.route.name == "general-math"
    assert any(r.startswith("kind=math(p=") for r in plan.reasons)
    capsys.readouterr()


@pytest.mark.parametrize("kinds", [("math", "fact"), ("math", "fact", "reason")])
def test_the_served_classifier_gives_the_probabilities_the_trained_one_does(
    kinds: tuple[str, ...],
) -> None:
    from tierserve.evaluate.kinds import KindClassifier
    from tierserve.policy.kinds import QuestionKindsSpec

    texts = {"math": "the sum of {}", "fact": "capital {}", "reason": "who is older {}"}
    rows = [
        OutcomeRow(
            id=f"{kind}-{i}",
            prompt=texts[kind].format(i),
            labels=Labels(kind=kind),
            outcomes={"small": TierOutcome(quality=1.0, cost=1.0)},
        )
        for kind in kinds
        for i in range(6)
    ]
    classifier = KindClassifier.train(rows, FunctionEncoder(sum_axis), min_probability=0.5)
    served = QuestionKindsSpec.model_validate(classifier.served())
    assert sorted(served.kinds) == sorted(kinds)
    for prompt in ("the sum of 9", "capital 9"):
        vector = FunctionEncoder(sum_axis).encode([prompt])[0]
        expected = classifier.model.predict_proba([vector])[0]
        found = served.probabilities(vector)
        for kind, p in zip(classifier.model.classes_, expected, strict=True):
            assert found[str(kind)] == pytest.approx(p, abs=1e-9)
    assert served.decide(FunctionEncoder(sum_axis).encode(["the sum of 9"])[0]).kind == "math"


class LabelReader:
    """A kind classifier that reads each row's label (a perfect one, the point being what the
    calibration does with a kind it has few rows of)."""

    min_probability = 0.5

    view = PromptView()

    def __init__(self, rows: list[OutcomeRow]) -> None:
        self.kind_of = {r.prompt: r.labels.kind or "" for r in rows}

    def cross_fitted(self, rows: list[OutcomeRow]) -> list[str]:
        return [self.kind_of[r.prompt] for r in rows]

    def predict(self, prompts: list[str]) -> list[str]:
        return [self.kind_of[p] for p in prompts]


def test_a_kind_with_few_rows_climbs_the_route_without_kinds() -> None:
    from tierserve.evaluate.kinds import report

    easy = [row(i, "easy", {"small": True, "medium": True, "large": True}) for i in range(40)]
    hard = [row(i, "hard", {"small": False, "medium": False, "large": True}) for i in range(40)]
    rare = [row(i, "rare", {"small": True, "medium": True, "large": True}) for i in range(5)]
    data = OutcomeSet.of([*easy, *hard, *rare], TIERS)
    ladders, result = report(
        "rows.jsonl",
        data,
        data,
        LabelReader(list(data.rows)),
        "conf",
        Objective(quality_share=1.0),
        [0.5],
    )
    assert set(ladders) == {"easy", "hard", ""}  # rare's rows chose the kind-less ladder
    assert result.kinds_without_a_ladder.kinds == {"rare": 5}
    assert result.test.routed_by_kind.by_kind["rare"].quality == 1.0
