"""Planning embeds a prompt once, for every prompt model the policy has, cut as the policy
says: the task classifier, the question kinds and a start router read the same vector."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.fakes import STACK_TIERS, FunctionEncoder, policy_data
from tierserve.policy.plan import RequestFacts, plan_route
from tierserve.policy.spec import load_policy
from tierserve.policy.start_router import PromptCut
from tierserve.prompt_models.embedder import EmbeddingTaskClassifier, embedder_for

TEMPLATE = "Answer with the answer only, no explanation.\nQuestion: {}\nAnswer:"


def one_hot(text: str) -> list[float]:
    """384 dimensions, as the shipped weights expect; arithmetic along one axis."""
    vector = [0.0] * 384
    vector[0 if any(c.isdigit() for c in text) else 1] = 1.0
    return vector


def test_one_request_runs_the_encoder_once_for_classifier_kinds_and_router(
    tmp_path: Path,
) -> None:
    data = policy_data()
    general = next(r for r in data["routes"] if r["name"] == "general")
    router = {"prefix": "", "tiers": {"small": {"weights": [1.0] * 384}}}
    general["start_router"] = router
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    policy = load_policy(path, STACK_TIERS)
    encoder = FunctionEncoder(one_hot)
    embedder = embedder_for(policy, encoder)
    assert embedder is not None and policy.task_classifier is not None
    classifier = EmbeddingTaskClassifier(policy.task_classifier, embedder)

    for question in ("What is 417 minus 38?", "Which ocean is the largest?"):
        before = len(encoder.passes)
        plan = plan_route(
            policy, RequestFacts(TEMPLATE.format(question)), classifier, embedder=embedder
        )
        assert plan.task.source == "classifier" and plan.kind is not None
        # One pass, over the question without the task set's template.
        assert encoder.passes[before:] == [[question]]


def test_the_cut_takes_the_longest_shared_prefix_and_suffix_a_prompt_carries() -> None:
    cut = PromptCut(prefixes=("Question: ", "Q: "), suffixes=("\nAnswer:",))
    assert cut.view("Question: Why?\nAnswer:") == "Why?"
    assert cut.view("Q: Why?") == "Why?"
    assert cut.view("Why, Question: ?") == "Why, Question: ?"
    assert cut.view("Question: \nAnswer:") == "Question: \nAnswer:"  # nothing left: whole
