"""A route's start router: the ladder starts at the cheapest tier predicted to suffice.

A router trained from outcomes (``tierserve eval calibrate --router trained``) writes, per tier
below the top, a logistic model of P(that tier's answer is acceptable) over the prompt's
sentence embedding. The policy names the file; on load its weights are inlined, so the policy
travels to other processes as data. Planning asks the gateway's embedder for the prompt's
vector and starts the ladder at the first tier whose probability reaches ``min_probability``
(the top tier always qualifies); the confidence cascade behind it is unchanged.

Pure data and arithmetic: the embedder (an encoder) is the gateway's, passed in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from tierserve.config import TierName
from tierserve.policy.file_form import FileForm

__all__ = [
    "DEFAULT_ENCODER",
    "ENCODERS",
    "EncoderName",
    "PromptCut",
    "PromptEmbedder",
    "PromptModelFile",
    "StartRouterSpec",
    "TierSufficiency",
    "first_sufficient",
    "inline_file",
    "prompt_view",
    "router_start",
    "start_tier",
]


EncoderName = Literal["all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2"]
"""The sentence encoders a prompt model can be trained on, both all-MiniLM-L6-v2 from a PyPI
package: its 8-bit ONNX export, or the transformer itself."""

ENCODERS: tuple[EncoderName, ...] = ("all-MiniLM-L6-v2-int8", "all-MiniLM-L6-v2")

DEFAULT_ENCODER: EncoderName = "all-MiniLM-L6-v2-int8"
"""What `tierserve eval` trains on unless told otherwise: the fastest that keeps the
classifiers' accuracy (docs/evaluation.md, "Encoders")."""


def prompt_view(prompt: str, prefixes: Sequence[str], suffixes: Sequence[str]) -> str:
    """The part of ``prompt`` a prompt model embeds: without the first of ``prefixes`` it
    starts with and the first of ``suffixes`` it ends with (what training prompts all shared);
    the whole prompt when that would leave nothing."""
    text = prompt
    prefix = next((p for p in prefixes if p and text.startswith(p)), "")
    text = text[len(prefix) :]
    suffix = next((s for s in suffixes if s and text.endswith(s)), "")
    text = text[: len(text) - len(suffix)]
    return text.strip() or prompt


@dataclass(frozen=True, slots=True)
class PromptCut:
    """What a policy cuts from a prompt before its one embedding: each prompt model's shared
    prefix and suffix (longest first). A prompt carrying one of them (a task set's instruction
    template) is embedded without it for every model; one carrying none, whole."""

    prefixes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, models: Sequence[PromptModelFile]) -> PromptCut:
        def longest_first(texts: set[str]) -> tuple[str, ...]:
            return tuple(sorted(texts - {""}, key=lambda t: (-len(t), t)))

        return cls(
            longest_first({m.prefix for m in models}), longest_first({m.suffix for m in models})
        )

    def view(self, prompt: str) -> str:
        return prompt_view(prompt, self.prefixes, self.suffixes)


class PromptEmbedder(Protocol):
    def embed(self, text: str) -> Sequence[float]:
        """The normalised sentence embedding of the prompt ``text``, cut as the policy's
        :class:`PromptCut` says."""


class TierSufficiency(BaseModel):
    """P(this tier's answer suffices) = sigmoid(weights . embedding + bias), or a constant
    where the training outcomes had one label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: list[float] = Field(default_factory=list)
    bias: float = 0.0
    constant: float | None = Field(default=None, ge=0.0, le=1.0)

    def probability(self, vector: Sequence[float]) -> float:
        if self.constant is not None:
            return self.constant
        if len(vector) != len(self.weights):
            raise ValueError(f"a {len(vector)}-dimension embedding for {len(self.weights)} weights")
        z = sum(w * x for w, x in zip(self.weights, vector, strict=True)) + self.bias
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


class PromptModelFile(FileForm):
    """A model over the prompt's sentence embedding that a policy names by file: its JSON
    (written by `tierserve eval calibrate`) is read relative to the policy file and inlined on
    load, so the policy travels to other processes as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str | None = Field(
        default=None,
        description="The model's JSON (written by `tierserve eval calibrate`), relative to the "
        "policy file; read and inlined on load.",
    )
    encoder: EncoderName = Field(
        default=DEFAULT_ENCODER,
        description="The sentence encoder it was trained on. Every prompt model of a policy "
        "names the same one, so the gateway embeds a prompt once for all of them.",
    )
    prefix: str = Field(default="", description="Cut from prompts before embedding.")
    suffix: str = Field(default="", description="Cut from prompts before embedding.")

    policy_key: ClassVar[str]
    """Where the policy holds it (for messages)."""
    models_key: ClassVar[str]
    """The file's key holding the models themselves."""

    extra_keys: ClassVar[tuple[str, ...]] = ()
    """More keys of the file to inline."""

    @classmethod
    def file_keys(cls) -> tuple[str, ...]:
        """What its ``file`` holds (the models last): the rest is the policy's."""
        return ("encoder", "prefix", "suffix", *cls.extra_keys, cls.models_key)

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any, info: ValidationInfo) -> Any:
        return inline_file(data, info, cls.policy_key, cls.file_keys())

    def weights_json(self) -> str:
        """The JSON of its ``file``, which the policy names and inlines on load."""
        return self.model_dump_json(include=set(self.file_keys())) + "\n"

    def file_form(self, data: dict[str, Any]) -> dict[str, Any]:
        """A model read from its ``file`` is the file's name, not its weights."""
        if self.file is None:
            return data
        return {k: v for k, v in data.items() if k not in self.file_keys()}

    def weight_lengths(self) -> set[int]:
        """The lengths of its models' weights: each must be the encoder's dimension."""
        raise NotImplementedError


class StartRouterSpec(PromptModelFile):
    """Where a route's ladder starts, predicted from the prompt before any tier runs."""

    min_probability: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="A tier below the top starts the ladder when the router's probability "
        "that its answer suffices is at least this.",
    )
    tiers: dict[TierName, TierSufficiency] = Field(
        default_factory=dict, description="Per tier below the top: its sufficiency model."
    )

    policy_key = "start_router"
    models_key = "tiers"

    def weight_lengths(self) -> set[int]:
        return {len(m.weights) for m in self.tiers.values() if m.constant is None}

    @model_validator(mode="after")
    def _has_tiers(self) -> StartRouterSpec:
        if not self.tiers:
            raise ValueError("a start_router needs a `file` or per-tier `tiers` models")
        return self


def inline_file(data: Any, info: ValidationInfo, name: str, wanted: Sequence[str]) -> Any:
    """``data`` with the ``wanted`` keys of the JSON its ``file`` names (relative to the policy's
    folder) inlined, so the policy travels to other processes as data; unchanged when it has no
    ``file`` or already holds the models (``wanted[-1]``)."""
    if not isinstance(data, dict) or not data.get("file") or data.get(wanted[-1]):
        return data
    base = (info.context or {}).get("base_dir")
    if base is None:
        raise ValueError(f"{name}.file needs the policy's folder; use load_policy()")
    path = Path(base) / data["file"]
    try:
        trained = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{name}.file {str(path)!r}: {error}") from None
    if not isinstance(trained, dict):
        raise ValueError(f"{name}.file {str(path)!r} is not a router (a JSON object)")
    return {**data, **{k: trained[k] for k in wanted if k in trained}}


def first_sufficient(
    ladder_tiers: Sequence[str], probability: Callable[[str], float | None], min_probability: float
) -> tuple[str, str]:
    """The tier a ladder starts at, and the reason code, e.g.
    ``router: p(small)=0.31<0.50 => start medium``: the first tier whose probability of
    sufficing reaches ``min_probability``. The last tier always qualifies, and so does a tier
    without a model (``probability`` None). Serving and offline evaluation both decide here."""
    seen: list[str] = []
    for tier in ladder_tiers[:-1]:
        p = probability(tier)
        if p is None:
            return tier, f"router: {','.join([*seen, f'no model for {tier}'])} => start {tier}"
        if p >= min_probability:
            seen.append(f"p({tier})={p:.2f}>={min_probability:.2f}")
            return tier, f"router: {','.join(seen)} => start {tier}"
        seen.append(f"p({tier})={p:.2f}<{min_probability:.2f}")
    top = ladder_tiers[-1]
    return top, f"router: {','.join(seen) or 'no model'} => start {top}"


def start_tier(
    router: StartRouterSpec, ladder_tiers: Sequence[str], vector: Sequence[float]
) -> tuple[str, str]:
    """Where ``router`` starts a ladder of ``ladder_tiers`` for a prompt embedded as ``vector``."""

    def probability(tier: str) -> float | None:
        model = router.tiers.get(tier)
        return None if model is None else model.probability(vector)

    return first_sufficient(ladder_tiers, probability, router.min_probability)


def router_start(
    router: StartRouterSpec | None, embedder: PromptEmbedder | None, text: str | None
) -> Callable[[list[str]], tuple[str, str]] | None:
    """The start rule :func:`~tierserve.policy.plan.eligible_steps` applies to a prompt:
    ``router`` over the prompt's embedding, computed only when a start is to be chosen. None
    without a router, an encoder or the prompt text (the whole ladder is climbed)."""
    if router is None or embedder is None or text is None:
        return None

    def start(tiers: list[str]) -> tuple[str, str]:
        return start_tier(router, tiers, embedder.embed(text))

    return start
