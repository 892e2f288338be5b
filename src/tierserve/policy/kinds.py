"""Question kinds: a policy can tell kinds of request apart within a task class.

The general task class covers short facts, arithmetic and short reasoning, and the embedded
tiers differ by kind (the medium tier, the large tier's model quantized to 4 bits, loses facts
but hardly any arithmetic). A kind classifier trained on labelled outcomes (``tierserve eval
calibrate --by-kind``) is a multinomial logistic model over the prompt's sentence embedding;
the policy names its file and routes name the kinds they serve (``kinds: [math]``), each with
the ladder calibrated for it. A request whose most likely kind is below ``min_probability``
gets no kind, and goes to a route without ``kinds``.

Pure data and arithmetic: the embedder is the gateway's, passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tierserve.policy.start_router import PromptEmbedder, PromptModelFile

__all__ = ["KindDecision", "KindModel", "QuestionKindsSpec", "question_kind"]


@dataclass(frozen=True, slots=True)
class KindDecision:
    """What the question-kind layer decided for one request."""

    kind: str | None
    """None: unsure, or nothing to classify with (the reason says which)."""
    probability: float | None
    """The most likely kind's probability, when the classifier ran."""
    reason: str


class KindModel(BaseModel):
    """One kind's linear score: weights . embedding + bias (a softmax over kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: list[float] = Field(min_length=1)
    bias: float = 0.0


class QuestionKindsSpec(PromptModelFile):
    """Which kind of question a request is, predicted from its prompt before any tier runs."""

    tasks: list[str] = Field(
        default_factory=lambda: ["unknown"],
        min_length=1,
        description="Task classes whose requests are given a kind; others never are.",
    )
    min_probability: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="The most likely kind is the request's kind when its probability is at "
        "least this; below it the request has no kind (routes without `kinds` serve it).",
    )
    kinds: dict[str, KindModel] = Field(
        default_factory=dict, description="Per kind: its linear score over the embedding."
    )

    policy_key = "question_kinds"
    models_key = "kinds"

    def weight_lengths(self) -> set[int]:
        return {len(model.weights) for model in self.kinds.values()}

    @model_validator(mode="after")
    def _two_kinds(self) -> QuestionKindsSpec:
        if len(self.kinds) < 2:
            raise ValueError(
                f"question_kinds needs a `file` or at least two `kinds` models, got "
                f"{sorted(self.kinds)}"
            )
        sizes = {len(model.weights) for model in self.kinds.values()}
        if len(sizes) != 1:
            raise ValueError(f"question_kinds: the kinds' weights differ in length ({sizes})")
        return self

    def probabilities(self, vector: Sequence[float]) -> dict[str, float]:
        """Softmax of the kinds' scores for a prompt embedded as ``vector``."""
        scores = {}
        for kind, model in self.kinds.items():
            if len(vector) != len(model.weights):
                raise ValueError(
                    f"a {len(vector)}-dimension embedding for {len(model.weights)} weights"
                )
            scores[kind] = sum(w * x for w, x in zip(model.weights, vector, strict=True))
            scores[kind] += model.bias
        top = max(scores.values())
        exps = {kind: math.exp(score - top) for kind, score in scores.items()}
        total = sum(exps.values())
        return {kind: value / total for kind, value in exps.items()}

    def decide(self, vector: Sequence[float]) -> KindDecision:
        """The kind (None when unsure) with its probability and reason code, e.g.
        ``kind=math(p=0.97)``."""
        probabilities = self.probabilities(vector)
        kind = max(probabilities, key=lambda k: probabilities[k])
        p = probabilities[kind]
        if p < self.min_probability:
            return KindDecision(
                None, p, f"kind: p({kind})={p:.2f}<{self.min_probability:.2f} => none"
            )
        return KindDecision(kind, p, f"kind={kind}(p={p:.2f})")


def question_kind(
    spec: QuestionKindsSpec | None,
    task: str,
    embedder: PromptEmbedder | None,
    text: str | None,
) -> KindDecision | None:
    """The request's kind (None: the policy does not ask for one). Without an encoder or the
    prompt's text the decision has no kind, and its reason says so. Serving and replay both
    decide here."""
    if spec is None or task not in spec.tasks:
        return None
    if embedder is None or text is None:
        why = "no encoder here" if embedder is None else "no prompt"
        return KindDecision(None, None, f"kind: {why} => none")
    return spec.decide(embedder.embed(text))
