"""The embedding router on prompts that share a long few-shot prefix (docs/evaluation.md):
RouteLLM's GSM8K with the same 8 worked examples before every question, the
router embedding each prompt whole (the encoder keeps its first 256 tokens: the shared
examples) against the router embedding the part that differs.

    python benchmarks/eval_fewshot_prefix.py \
        --out benchmarks/results/eval_routellm_gsm8k_fewshot.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tierserve.evaluate.figures import PromptViewFigures
from tierserve.evaluate.importers import read_routellm_csv
from tierserve.evaluate.outcomes import OutcomeSet
from tierserve.evaluate.routers import EmbeddingDifficultyRouter, PromptView
from tierserve.evaluate.sweep import report, score_points
from tierserve.prompt_models.encoder import load_encoder

GSM8K = Path(__file__).resolve().parent / "data/routellm/gsm8k_responses.csv"
SHOTS = 8


def few_shot(outcomes: OutcomeSet) -> OutcomeSet:
    strong = outcomes.tiers[-1]
    shots = outcomes.split("train").rows[:SHOTS]
    prefix = "".join(
        f"Question: {r.prompt}\nAnswer: {r.outcomes[strong].answer}\n\n" for r in shots
    )
    rows = [
        r.model_copy(update={"prompt": f"{prefix}Question: {r.prompt}\nAnswer:"})
        for r in outcomes.rows
    ]
    return OutcomeSet.of(rows, outcomes.tiers)


class WholePrompt(PromptView):
    """The router as it was: every prompt embedded whole, cut by the encoder at its window."""

    def embed(self, encoder: Any, prompts: Any) -> Any:
        return encoder.encode(list(prompts))


def measured(router: EmbeddingDifficultyRouter, test: OutcomeSet) -> dict[str, Any]:
    scores = router.scores([r.prompt for r in test.rows])
    found = report(test, score_points(test, scores), scores=scores)
    return {
        "apgr": found.apgr,
        "cpt": found.cpt,
        "not_applicable": found.not_applicable,
        "distinct_scores": len({round(s, 9) for s in scores}),
        "prompt_view": PromptViewFigures.of_view(router.view).model_dump(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    padded = few_shot(read_routellm_csv(GSM8K).outcomes)
    train, test = padded.split("train"), padded.split("test")
    encoder = load_encoder("all-MiniLM-L6-v2")  # the window this benchmark is about
    differing = EmbeddingDifficultyRouter.train(train, encoder)
    whole = EmbeddingDifficultyRouter.train(train, encoder, WholePrompt())
    result = {
        "data": f"RouteLLM GSM8K, {SHOTS} worked examples before every question",
        "prompt_chars_median": sorted(len(r.prompt) for r in padded.rows)[len(padded.rows) // 2],
        "rows": {"train": len(train.rows), "test": len(test.rows)},
        "embedding_whole_prompt": measured(whole, test),
        "embedding_differing_part": measured(differing, test),
    }
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
