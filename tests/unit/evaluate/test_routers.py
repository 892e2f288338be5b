"""Routers that see the question: the embedding routers cut the prefix and suffix every prompt
shares before embedding (a few-shot prefix longer than the encoder's window used to give
every prompt the same score), say how many prompts they truncated, and the router trained
from outcomes predicts, per tier, whether that tier's answer suffices."""

from pathlib import Path

import pytest

from tierserve.evaluate.importers import read_routellm_csv
from tierserve.evaluate.outcomes import OutcomeRow, OutcomeSet, TierOutcome
from tierserve.evaluate.routers import EmbeddingDifficultyRouter, PromptView, SufficiencyRouter
from tierserve.evaluate.sweep import not_applicable, report, score_points
from tierserve.signals.task_model import sentence_encoder

GSM8K = Path(__file__).resolve().parents[3] / "benchmarks/data/routellm/gsm8k_responses.csv"


@pytest.fixture(scope="module")
def encoder() -> object:
    return sentence_encoder()


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
    gsm8k: OutcomeSet, encoder: object
) -> None:
    sample = OutcomeSet.of(gsm8k.rows[:240], gsm8k.tiers)
    padded = few_shot(sample)
    assert min(len(r.prompt) for r in padded.rows) > 3000  # far past MiniLM's 256 tokens
    router = EmbeddingDifficultyRouter.train(padded.split("train"), encoder)
    test = padded.split("test")
    scores = router.scores([r.prompt for r in test.rows])
    assert router.view.describe()["shared_prefix_chars"] > 3000
    assert len(set(round(s, 6) for s in scores)) > len(scores) // 2
    assert not_applicable(test, scores) == []
    # The same prompts embedded whole, as before: the window holds only the shared prefix.
    whole = encoder.encode([r.prompt for r in test.rows], normalize_embeddings=True)  # type: ignore[attr-defined]
    assert len({tuple(v.round(5)) for v in whole}) == 1


def test_prompts_longer_than_the_window_keep_their_end_and_are_counted(encoder: object) -> None:
    view = PromptView()
    long = "filler words " * 300 + "What is the capital of France?"
    vectors = view.embed(encoder, [long, "What is the capital of France?", "Short one"])
    assert view.describe()["truncated"] == 1 and view.describe()["of"] == 3
    # The end was kept: the truncated prompt is closer to its question than to another text.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_the_trained_router_beats_random_on_gsm8k_and_reads_per_tier_sufficiency(
    gsm8k: OutcomeSet, encoder: object
) -> None:
    router = SufficiencyRouter.train(gsm8k.split("train"), "logistic", encoder)
    test = gsm8k.split("test")
    scores = router.scores([r.prompt for r in test.rows])
    measured = report(test, score_points(test, scores), scores=scores)
    assert measured["apgr"] > 0.53 and measured["cpt"]["50%"] < 0.47  # random: 0.50 and 0.50
    suffices = router.suffices(["What is 2 + 2?"])
    assert set(suffices) == {gsm8k.tiers[0]} and 0.0 < suffices[gsm8k.tiers[0]][0] < 1.0


def test_a_tier_that_always_or_never_suffices_is_a_constant(encoder: object) -> None:
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
