"""What a step costs: each tier's cost model (from the stack config) applied to its tokens and
engine seconds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from tierserve.config import TierConfig
from tierserve.policy.step import Step

__all__ = ["TierPrice", "priced", "totals"]


class TierPrice(BaseModel):
    """A tier's cost model (from the stack config)."""

    model_config = ConfigDict(frozen=True)

    per_million_tokens: float = 0.0
    per_gpu_second: float = 0.0

    @classmethod
    def of(cls, tier: TierConfig) -> TierPrice:
        return cls(
            per_million_tokens=tier.cost_per_million_tokens,
            per_gpu_second=tier.cost_per_gpu_second,
        )

    def cost(self, tokens: int, engine_seconds: float) -> float:
        return tokens * self.per_million_tokens / 1e6 + engine_seconds * self.per_gpu_second


def priced(step: Step, prices: Mapping[str, TierPrice]) -> Step:
    """``step`` with its cost from its tier's cost model."""
    price = prices.get(step.tier or "", TierPrice())
    tokens = step.prompt_tokens + step.completion_tokens
    return step.model_copy(update={"cost_usd": price.cost(tokens, step.latency_s)})


def totals(steps: Sequence[Step]) -> tuple[int, int, float]:
    """(prompt tokens, completion tokens, cost) over ``steps``."""
    return (
        sum(s.prompt_tokens for s in steps),
        sum(s.completion_tokens for s in steps),
        sum(s.cost_usd for s in steps),
    )
