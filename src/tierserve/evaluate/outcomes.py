"""The outcome data set: one JSONL row per request, with its labels and each tier's outcome.

    {"id": "gsm8k-0007", "prompt": "...", "split": "test",
     "labels": {"task": "faq", "risk": "low", "expected": "18", "checker": "numeric",
                "structured": false},
     "outcomes": {"small": {"quality": 0.0, "cost": 1.2e-06, "latency_s": 3.1,
                            "prompt_tokens": 80, "completion_tokens": 120,
                            "signals": {"conf_q10": 0.21, "mean_logprob": -0.61,
                                        "sum_logprob": -73.2},
                            "answer": "..."},
                  "large": {...}}}

``quality`` is in [0, 1] (1 = correct for checkers that are right or wrong); ``cost`` is in the
data set's currency per request; ``signals`` are confidence features measured on that tier's
answer (any names; the evaluator calibrates whichever it is told to use). Tiers are ordered by
mean cost, cheapest first, unless the set names the order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tierserve.errors import ConfigError

__all__ = ["ACCEPTABLE_QUALITY", "Labels", "OutcomeRow", "OutcomeSet", "TierOutcome", "acceptable"]

ACCEPTABLE_QUALITY = 0.5


def acceptable(quality: float) -> bool:
    """An answer is acceptable when its quality is at least 0.5: the one definition behind
    calibration labels, routing-decision metrics and expected quality."""
    return quality >= ACCEPTABLE_QUALITY


class TierOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quality: float = Field(ge=0.0, le=1.0, description="1 = acceptable/correct, 0 = not.")
    cost: float = Field(ge=0.0, description="Cost of this tier answering this request.")
    latency_s: float | None = Field(default=None, ge=0.0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    signals: dict[str, float] = Field(
        default_factory=dict, description="Confidence features of the answer, by name."
    )
    answer: str | None = None
    valid_schema: bool | None = Field(
        default=None, description="The answer passed the schema check (structured rows only)."
    )
    model: str | None = Field(
        default=None,
        description="The model version that answered, as /v1/models reports it (e.g. "
        "'Qwen/Qwen2.5-Coder-0.5B-Instruct@gptq-w4a16'): what a policy calibrated on these "
        "rows records as calibrated_on. None: not recorded (rows collected before it was).",
    )


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = None
    risk: str | None = None
    expected: str | None = Field(default=None, description="The reference answer, if any.")
    checker: str | None = Field(default=None, description="How quality was judged.")
    structured: bool = Field(default=False, description="Structured output was required.")
    source: str | None = Field(default=None, description="Where the row comes from.")
    kind: str | None = Field(
        default=None,
        description="The question's kind within its task class (short fact, arithmetic...): "
        "what `tierserve eval calibrate --by-kind` learns to tell apart.",
    )


class OutcomeRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str
    split: Literal["train", "test"] = "test"
    labels: Labels = Field(default_factory=Labels)
    outcomes: dict[str, TierOutcome] = Field(min_length=1)


@dataclass(frozen=True)
class OutcomeSet:
    rows: tuple[OutcomeRow, ...]
    tiers: tuple[str, ...]
    """Cheapest first."""

    @classmethod
    def of(cls, rows: Iterable[OutcomeRow], tiers: Sequence[str] | None = None) -> OutcomeSet:
        rows = tuple(rows)
        if not rows:
            raise ConfigError("the outcome set is empty", hint="check the input file")
        names = set(rows[0].outcomes)
        for row in rows:
            if set(row.outcomes) != names:
                raise ConfigError(
                    f"row {row.id!r} has outcomes for {sorted(row.outcomes)}, the first row for "
                    f"{sorted(names)}",
                    hint="every row needs an outcome on every tier (collect the missing ones)",
                )
        if tiers is None:
            tiers = sorted(names, key=lambda t: sum(r.outcomes[t].cost for r in rows))
        elif set(tiers) != names:
            raise ConfigError(f"tiers {list(tiers)} do not match the outcomes {sorted(names)}")
        return cls(rows, tuple(tiers))

    def split(self, which: Literal["train", "test"]) -> OutcomeSet:
        return OutcomeSet.of([r for r in self.rows if r.split == which], self.tiers)

    def quality(self, tier: str) -> float:
        return sum(r.outcomes[tier].quality for r in self.rows) / len(self.rows)

    def cost(self, tier: str) -> float:
        return sum(r.outcomes[tier].cost for r in self.rows) / len(self.rows)

    def models(self) -> dict[str, str]:
        """Per tier, the model version every row's answer came from (tiers whose rows name
        none are left out): what a policy calibrated on these rows was calibrated on. Rows of
        one tier from two versions are refused: thresholds fitted on a mix fit neither."""
        found: dict[str, str] = {}
        for tier in self.tiers:
            versions = {r.outcomes[tier].model for r in self.rows}
            if len(versions) > 1:
                named = sorted(str(v) for v in versions)
                raise ConfigError(
                    f"the rows of tier {tier!r} come from {len(versions)} model versions "
                    f"({', '.join(named)})",
                    hint="calibrate on rows from one version (collect again on one host)",
                )
            (version,) = versions
            if version is not None:
                found[tier] = version
        return found

    @classmethod
    def read(cls, path: Path, tiers: Sequence[str] | None = None) -> OutcomeSet:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file", hint="check the path")
        rows: list[OutcomeRow] = []
        seen: dict[str, int] = {}
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = OutcomeRow.model_validate_json(line)
            except ValueError as error:
                first = str(error).splitlines()
                raise ConfigError(
                    f"{path}:{number} is not an outcome row ({' '.join(first[:3])[:200]})",
                    hint="see tierserve/evaluate/outcomes.py for the format; a truncated last "
                    "line means an interrupted write",
                ) from None
            if row.id in seen:
                raise ConfigError(
                    f"{path}:{number} repeats the id {row.id[:60]!r} of line {seen[row.id]}",
                    hint="keep one row per request id",
                )
            seen[row.id] = number
            rows.append(row)
        if not rows:
            raise ConfigError(f"{path} holds no outcome rows", hint="check the input file")
        try:
            return cls.of(rows, tiers)
        except ConfigError as error:
            raise ConfigError(f"{path}: {error.message}", hint=error.hint) from None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as out:
            for row in self.rows:
                out.write(json.dumps(row.model_dump(exclude_none=True)) + "\n")
