"""Routers that see the question: the embedding routers cut the prefix and suffix every prompt
shares before embedding (a few-shot prefix longer than the encoder's window used to give
every prompt the same score), say how many prompts they truncated, and the router trained
from outcomes predicts, per tier, whether that tier's answer suffices."""

import json
from pathlib import Path

import pytest

from tests.fakes import STACK_TIERS
from tierserve.cli import main
from tierserve.evaluate.importers import read_routellm_csv
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.routers import EmbeddingDifficultyRouter, PromptView, SufficiencyRouter
from tierserve.evaluate.sweep import not_applicable, report, score_points
from tierserve.policy.spec import TaskClass, load_policy
from tierserve.policy.start_router import PromptCut, StartRouterSpec
from tierserve.prompt_models.embedder import SentenceEmbedder
from tierserve.prompt_models.encoder import Encoder, load_encoder

GSM8K = Path(__file__).resolve().parents[3] / "benchmarks/data/routellm/gsm8k_responses.csv"


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return load_encoder()


@pytest.fixture(scope="module")
def gsm8k() -> OutcomeSet:
    return read_routellm_csv(GSM8K).outcomes


def few_shot(outcomes: OutcomeSet, shots: int = 8) -> OutcomeSet:
    """Every prompt behind the same worked examples, as few-shot evaluation sets send them."""
    examples = outcomes.split("train").rows[:shots]
    prefix = "".join(
        f"Question: {r.prompt}\nAnswer: {r.outcomes[outcomes.tiers[-1]].answer}\n\n"
        for r in examples
    )
    rows = [
        r.model_copy(update={"prompt": f"{prefix}Question: {r.prompt}\nAnswer:"})
        for r in outcomes.rows
    ]
    return OutcomeSet.of(rows, outcomes.tiers)


def test_the_view_cuts_what_every_prompt_shares_at_word_boundaries() -> None:
    view = PromptView.learn(
        ["Solve: 2 + 2. Be brief.", "Solve: 12 * 3. Be brief.", "Solve: 7. Be brief."]
    )
    assert (view.prefix, view.suffix) == ("Solve: ", " Be brief.")
    assert view.distinct("Solve: 9 - 1. Be brief.") == "9 - 1."
    assert view.distinct("Another prompt entirely") == "Another prompt entirely"
    assert PromptView.learn(["same", "same"]).distinct("same") == "same"  # never emptied


def test_a_shared_few_shot_prefix_no_longer_gives_every_prompt_one_score(
    gsm8k: OutcomeSet, encoder: Encoder
) -> None:
    sample = OutcomeSet.of(gsm8k.rows[:240], gsm8k.tiers)
    padded = few_shot(sample)
    assert min(len(r.prompt) for r in padded.rows) > 3000  # far past MiniLM's 256 tokens
    router = EmbeddingDifficultyRouter.train(padded.split("train"), encoder)
    test = padded.split("test")
    scores = router.scores([r.prompt for r in test.rows])
    assert len(router.view.prefix) > 3000
    assert len(set(round(s, 6) for s in scores)) > len(scores) // 2
    assert not_applicable(test, scores) == []
    # The same prompts embedded whole, as before: the window holds only the shared prefix.
    whole = encoder.encode([r.prompt for r in test.rows])
    assert len({tuple(v.round(5)) for v in whole}) == 1


def test_prompts_longer_than_the_window_keep_their_end_and_are_counted(encoder: Encoder) -> None:
    view = PromptView()
    long = "filler words " * 300 + "What is the capital of France?"
    vectors = view.embed(encoder, [long, "What is the capital of France?", "Short one"])
    assert view.truncated == 1 and view.seen == 3
    # The end was kept: the truncated prompt is closer to its question than to another text.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_the_trained_router_beats_random_on_gsm8k_and_reads_per_tier_sufficiency(
    gsm8k: OutcomeSet, encoder: Encoder
) -> None:
    router = SufficiencyRouter.train(gsm8k.split("train"), "logistic", encoder)
    test = gsm8k.split("test")
    scores = router.scores([r.prompt for r in test.rows])
    measured = report(test, score_points(test, scores), scores=scores)
    assert (measured.apgr or 0) > 0.53 and (
        measured.cpt["50%"] or 1
    ) < 0.47  # random: 0.50 and 0.50
    suffices = router.suffices(["What is 2 + 2?"])
    assert set(suffices) == {gsm8k.tiers[0]} and 0.0 < suffices[gsm8k.tiers[0]][0] < 1.0


def test_a_tier_that_always_or_never_suffices_is_a_constant(encoder: Encoder) -> None:
    rows = [
        OutcomeRow(
            id=f"r{i}",
            prompt=f"question number {i}",
            split="train",
            outcomes={
                "small": TierOutcome(quality=0.0, cost=1.0),
                "medium": TierOutcome(quality=float(i % 2), cost=2.0),
                "large": TierOutcome(quality=1.0, cost=3.0),
            },
        )
        for i in range(12)
    ]
    router = SufficiencyRouter.train(OutcomeSet.of(rows), "knn", encoder)
    found = router.suffices(["question number 3", "question number 4"])
    assert found["small"] == [0.0, 0.0]
    assert len(found["medium"]) == 2 and all(0.0 <= p <= 1.0 for p in found["medium"])


def test_a_served_router_gives_the_probabilities_it_was_evaluated_with(
    gsm8k: OutcomeSet, encoder: Encoder
) -> None:
    """The gateway computes the exported weights over its own embedding of the prompt: the
    probabilities must be the ones offline evaluation chose the start level with."""
    named = dict(zip(gsm8k.tiers, ("small", "large"), strict=True))  # served tier names
    rows = [
        r.model_copy(update={"outcomes": {named[t]: o for t, o in r.outcomes.items()}})
        for r in gsm8k.rows[:160]
    ]
    router = SufficiencyRouter.train(OutcomeSet.of(rows), "logistic", encoder)
    served = StartRouterSpec.model_validate(router.served())
    embedder = SentenceEmbedder(encoder, PromptCut.of([served]))
    prompts = [r.prompt for r in gsm8k.rows[200:206]]
    offline = router.suffices(prompts)["small"]
    assert len({round(p, 3) for p in offline}) > 1
    for prompt, expected in zip(prompts, offline, strict=True):
        vector = embedder.embed(prompt)
        assert served.tiers["small"].probability(vector) == pytest.approx(expected, abs=1e-5)


def mixed_outcomes(count: int = 80) -> OutcomeSet:
    """Capital questions the small tier gets right, sums only medium does, and riddles only
    large does; every tier is confident, so only a start router can save the wasted calls."""
    kinds = [
        ("What is the capital of country number {i}?", (1.0, 1.0, 1.0)),
        ("Add {i} and {i} plus seventeen.", (0.0, 1.0, 1.0)),
        ("Solve this riddle about a locked room, version {i}.", (0.0, 0.0, 1.0)),
    ]
    rows = []
    for i in range(count):
        text, quality = kinds[i % 3]
        rows.append(
            OutcomeRow(
                id=f"r{i}",
                prompt=text.format(i=i),
                split="train" if i % 2 else "test",
                outcomes={
                    tier: TierOutcome(quality=q, cost=cost, signals={"conf_q10": 0.9})
                    for tier, q, cost in zip(
                        ("small", "medium", "large"), quality, (1, 2, 10), strict=True
                    )
                },
            )
        )
    return OutcomeSet.of(rows)


def test_calibrate_with_a_router_writes_a_policy_that_starts_where_it_should(
    tmp_path: Path,
) -> None:
    outcomes = tmp_path / "outcomes.jsonl"
    mixed_outcomes().write(outcomes)
    policy = Path(__file__).resolve().parents[3] / "serve_configs/policies/support.yaml"
    route = next(
        r.name for r in load_policy(policy, STACK_TIERS).routes if TaskClass.UNKNOWN in r.tasks
    )
    out_policy, report_path = policy.with_name("test-router-calibrated.yaml"), tmp_path / "r.json"
    try:
        code = main(
            ["eval", "calibrate", str(outcomes), "--router", "trained", "--objective",
             "quality_share=1.0", "--policy", str(policy), "--route", route,
             "--out-policy", str(out_policy), "--out", str(report_path)]
        )  # fmt: skip
        assert code == 0
        report = json.loads(report_path.read_text())
        test = report["test"]
        assert test["calibrated_policy"]["quality"] == 1.0
        # Started where each kind is first answered right: no call wasted on a cheaper tier.
        assert test["calibrated_policy"]["cost"] == pytest.approx(
            test["baselines"]["oracle"]["cost"], rel=0.05
        )
        assert test["calibrated_policy"]["cost"] < 0.5 * test["baselines"]["large_only"]["cost"]
        written = load_policy(out_policy, STACK_TIERS)
        router = next(r.start_router for r in written.routes if r.name == route)
        assert router is not None and router.min_probability == report["router"]["min_probability"]
    finally:
        out_policy.unlink(missing_ok=True)
        out_policy.with_name(f"{out_policy.stem}.{route}-router.json").unlink(missing_ok=True)
