"""Published outcome data into :class:`~tierserve.evaluate.outcomes.OutcomeSet`, refusing to guess.

* RouteLLM's two-model CSVs (``prompt, <weak>, <strong>, <weak>_response, <strong>_response``
  with True/False correctness), e.g. ``gsm8k_responses.csv``. They carry no prices: each answer
  costs its estimated tokens (prompt + response characters / 4) at a price per million tokens,
  by default the blended prices the RouteLLM paper uses (GPT-4 $24.7, Mixtral-8x7B $0.24).
* RouterBench's multi-model tables (``prompt``, ``eval_name``, one correctness column per model
  and ``<model>|total_cost`` columns with real prices; ``.pkl``, ``.csv`` or ``.parquet``).
* RouteLLM's judged outcomes (MT-Bench judgements): see :mod:`tierserve.evaluate.judged`.

Which models are the tiers is the caller's choice (:class:`TierChoice`): a file of two models
may be ordered by their mean cost, and the report says so; a file of more must be told. A blank,
NaN or unreadable score is refused with its row and column named, unless the caller asked to
drop such rows (the count is reported). Every problem with a file is a :class:`ConfigError`
naming the file, the row and the fix.

Rows are split into train and test by a hash of the prompt, so a split is stable across runs
and machines.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tierserve.errors import ConfigError
from tierserve.evaluate.outcomes import Labels, OutcomeRow, OutcomeSet, TierOutcome

__all__ = [
    "ROUTELLM_PRICES",
    "UNCHOSEN",
    "Imported",
    "TierChoice",
    "Unscored",
    "chosen_tiers",
    "priced_tiers",
    "read_routellm_csv",
    "read_routerbench",
    "read_table",
    "stable_split",
]

ROUTELLM_PRICES = {
    "gpt-4-1106-preview": 24.7,
    "mistralai/Mixtral-8x7B-Instruct-v0.1": 0.24,
}
"""USD per million tokens (input and output blended), as in the RouteLLM paper."""

DROP_HINT = "fix the file, or pass --drop-unscored to leave such rows out (they are counted)"


def stable_split(key: str, test_fraction: float = 0.5) -> Literal["train", "test"]:
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_fraction else "train"


@dataclass(frozen=True, slots=True)
class TierChoice:
    """Which models of a file are the tiers, cheapest first: ``tiers`` names them all in order;
    ``weak`` and ``strong`` name the two ends of a two-tier set."""

    tiers: tuple[str, ...] = ()
    weak: str | None = None
    strong: str | None = None

    def named(self) -> tuple[str, ...]:
        if self.tiers and (self.weak or self.strong):
            raise ConfigError(
                "both --tiers and --weak/--strong were given", hint="use one or the other"
            )
        if bool(self.weak) != bool(self.strong):
            raise ConfigError("--weak and --strong go together", hint="name both models")
        if self.weak and self.strong:
            return (self.weak, self.strong)
        if len(set(self.tiers)) != len(self.tiers):
            raise ConfigError(f"--tiers names a model twice: {list(self.tiers)}")
        if len(self.tiers) == 1:
            raise ConfigError(f"--tiers names one model ({self.tiers[0]})", hint="name two or more")
        return self.tiers


UNCHOSEN = TierChoice()
"""No tiers named: a two-model file is ordered by mean cost, a larger one is refused."""


@dataclass
class Imported:
    """An imported set and what the import did to get it."""

    outcomes: OutcomeSet
    source: str
    dropped: int = 0
    """Rows left out for a blank or unreadable score (only with ``drop_unscored``)."""
    notes: list[str] = field(default_factory=list)
    """How tiers were chosen, how quality was mapped: printed and kept in the report."""

    def summary(self) -> str:
        tiers = ", ".join(f"{t} (q={self.outcomes.quality(t):.3f})" for t in self.outcomes.tiers)
        dropped = f", {self.dropped} rows dropped unscored" if self.dropped else ""
        return f"{len(self.outcomes.rows)} rows{dropped}, tiers cheapest first: {tiers}"


class Unscored(ValueError):
    """A blank, NaN or unreadable score: the row is refused or, on request, dropped."""


def chosen_tiers(
    path: Path, available: Sequence[str], choice: TierChoice, mean_cost: Mapping[str, float]
) -> tuple[tuple[str, ...], str]:
    """The tiers in order and a note saying how they were chosen."""
    named = choice.named()
    if named:
        unknown = [m for m in named if m not in available]
        if unknown:
            raise ConfigError(
                f"{path} has no model {unknown[0]!r}",
                hint=f"choose from {sorted(available)}",
            )
        return named, f"tiers as named: {', '.join(named)}"
    if len(available) > 2:
        raise ConfigError(
            f"{path} has {len(available)} models; which are the tiers is not guessed",
            hint=f"pass --tiers A,B,... (cheapest first) from {sorted(available)}",
        )
    if len(available) < 2:
        raise ConfigError(f"{path} has {len(available)} model(s); routing needs two or more")
    ordered = tuple(sorted(available, key=lambda m: mean_cost[m]))
    return ordered, (
        f"two models ordered by mean cost: weak {ordered[0]}, strong {ordered[1]} "
        "(--weak/--strong to choose)"
    )


def priced_tiers(
    path: Path, models: Sequence[str], choice: TierChoice, prices: Mapping[str, float] | None
) -> tuple[tuple[str, ...], str, dict[str, float]]:
    """The tiers of a file without costs, how they were chosen, and the prices (USD per
    million tokens; RouteLLM's by default) every tier must have."""
    known = dict(ROUTELLM_PRICES if prices is None else prices)
    tiers, how = chosen_tiers(path, models, choice, {m: known.get(m, math.inf) for m in models})
    missing = [m for m in tiers if m not in known]
    if missing:
        raise ConfigError(
            f"{path}: no price for {missing[0]!r} (the file carries none)",
            hint=f"pass --price '{missing[0]}=USD_PER_MILLION_TOKENS'",
        )
    return tiers, how, known


def read_table(path: Path) -> Any:
    """A pandas frame of ``path`` (``.pkl``, ``.parquet`` or CSV), every read problem a
    ConfigError naming the file."""
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="check the path")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path} is empty", hint="check the download")
    try:
        if path.suffix == ".pkl":
            frame = pd.read_pickle(path)
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path)
    except (ValueError, OSError, EOFError, pickle.UnpicklingError, pd.errors.ParserError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(
            f"{path} cannot be read ({first[:160]})",
            hint="it may be truncated or of another format: check the download",
        ) from None
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise ConfigError(f"{path} holds no rows", hint="check the download")
    return frame


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == ""


def truth(value: Any) -> float:
    """A True/False correctness cell as quality 1/0."""
    if _blank(value):
        raise Unscored("blank or NaN")
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise Unscored(f"{str(value)[:40]!r} is not True/False")


def _number_cell(value: Any, low: float, high: float) -> float:
    if _blank(value):
        raise Unscored("blank or NaN")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Unscored(f"{str(value)[:40]!r} is not a number") from None
    if not low <= number <= high:
        raise Unscored(f"{number} is outside {low:g}..{high:g}")
    return number


def share(value: Any) -> float:
    """A score cell that must be a number from 0 to 1."""
    return _number_cell(value, 0.0, 1.0)


def cost_cell(value: Any) -> float:
    """A cost cell: a number of at least 0."""
    return _number_cell(value, 0.0, math.inf)


def refuse_or_drop(path: Path, line: int, column: str, error: Unscored, drop: bool) -> None:
    """Raises the one-line error for an unscored cell, unless the caller drops such rows."""
    if not drop:
        raise ConfigError(f"{path} row {line}, column {column!r}: {error}", hint=DROP_HINT)


def read_routellm_csv(
    path: Path,
    *,
    choice: TierChoice = UNCHOSEN,
    prices: Mapping[str, float] | None = None,
    test_fraction: float = 0.5,
    drop_unscored: bool = False,
    source: str = "routellm",
) -> Imported:
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    models = [c for c in columns if c != "prompt" and not c.endswith("_response")]
    if "prompt" not in columns or len(models) < 2:
        raise ConfigError(
            f"{path}: not a RouteLLM responses CSV (columns {columns[:6]})",
            hint="expected prompt, <model>..., <model>_response...",
        )
    tiers, how, prices = priced_tiers(path, models, choice, prices)
    rows, dropped = [], 0
    seen: dict[str, int] = {}
    for line, record in enumerate(frame.to_dict("records"), start=2):
        if _blank(record["prompt"]):
            refuse_or_drop(path, line, "prompt", Unscored("blank or NaN"), drop_unscored)
            dropped += 1
            continue
        prompt = str(record["prompt"])
        if prompt in seen:
            raise ConfigError(
                f"{path} rows {seen[prompt]} and {line} ask the same prompt",
                hint="remove the duplicate rows (each prompt is one request)",
            )
        seen[prompt] = line
        outcomes = {}
        column = "prompt"
        try:
            for model in tiers:
                column = model
                quality = truth(record[model])
                response = record.get(f"{model}_response")
                response = "" if _blank(response) else str(response)
                tokens = (len(prompt) + len(response)) // 4
                outcomes[model] = TierOutcome(
                    quality=quality,
                    cost=tokens * prices[model] / 1e6,
                    prompt_tokens=len(prompt) // 4,
                    completion_tokens=len(response) // 4,
                    answer=response,
                )
        except Unscored as error:
            refuse_or_drop(path, line, column, error, drop_unscored)
            dropped += 1
            continue
        rows.append(
            OutcomeRow(
                id=f"{source}-{line - 2:05d}",
                prompt=prompt,
                split=stable_split(prompt, test_fraction),
                labels=Labels(checker="routellm-correctness", source=source),
                outcomes=outcomes,
            )
        )
    notes = [how, "cost: (prompt + response characters) / 4 tokens at the price per million"]
    return Imported(_set(path, rows, tiers), str(path), dropped, notes)


def _set(path: Path, rows: list[OutcomeRow], tiers: Sequence[str]) -> OutcomeSet:
    if not rows:
        raise ConfigError(f"{path}: no row is left to evaluate", hint="check the file")
    return OutcomeSet.of(rows, tiers)


def read_routerbench(
    path: Path,
    *,
    choice: TierChoice = UNCHOSEN,
    test_fraction: float = 0.5,
    drop_unscored: bool = False,
) -> Imported:
    frame = read_table(path)
    columns = [str(c) for c in frame.columns]
    priced = [c.removesuffix("|total_cost") for c in columns if c.endswith("|total_cost")]
    scored = [
        c
        for c in columns
        if c not in ("prompt", "sample_id", "eval_name", "oracle_model_to_route_to")
        and "|" not in c
    ]
    if "prompt" not in columns or not priced:
        raise ConfigError(
            f"{path}: not a RouterBench table (no prompt or no <model>|total_cost column)",
            hint="expected prompt, <model> (correctness), <model>|total_cost columns",
        )
    available = sorted(set(priced) & set(scored))
    for model in choice.named():
        if model in scored and model not in priced:
            raise ConfigError(
                f"{path}: model {model!r} has no cost column '{model}|total_cost'",
                hint="add the column, or choose tiers that have one",
            )
        if model in priced and model not in scored:
            raise ConfigError(
                f"{path}: model {model!r} has no correctness column '{model}'",
                hint="add the column, or choose tiers that have one",
            )
    tiers, how = chosen_tiers(path, available, choice, _mean_costs(frame, available))
    rows, dropped = [], 0
    seen: dict[str, int] = {}
    for line, record in enumerate(frame.to_dict("records"), start=2):
        key = str(record.get("sample_id", line - 2))
        if key in seen:
            raise ConfigError(
                f"{path} rows {seen[key]} and {line} share the sample_id {key[:60]!r}",
                hint="remove the duplicate rows (each sample is one request)",
            )
        seen[key] = line
        prompt = record["prompt"]
        outcomes = {}
        column = "prompt"
        try:
            if _blank(prompt):
                raise Unscored("blank or NaN")
            for model in tiers:
                column = model
                quality = share(record[model])
                column = f"{model}|total_cost"
                cost = cost_cell(record[column])
                answer = record.get(f"{model}|model_response")
                outcomes[model] = TierOutcome(
                    quality=quality, cost=cost, answer=None if _blank(answer) else str(answer)
                )
        except Unscored as error:
            refuse_or_drop(path, line, column, error, drop_unscored)
            dropped += 1
            continue
        rows.append(
            OutcomeRow(
                id=f"routerbench-{key}",
                prompt=str(prompt),
                split=stable_split(key + str(prompt), test_fraction),
                labels=Labels(
                    task=str(record["eval_name"]) if "eval_name" in record else None,
                    checker="routerbench-performance",
                    source="routerbench",
                ),
                outcomes=outcomes,
            )
        )
    return Imported(_set(path, rows, tiers), str(path), dropped, [how])


def _mean_costs(frame: Any, models: Sequence[str]) -> dict[str, float]:
    """Each model's mean cost over the rows that have one (for ordering two models only)."""
    import pandas as pd

    means = {}
    for model in models:
        mean = pd.to_numeric(frame[f"{model}|total_cost"], errors="coerce").mean()
        means[model] = math.inf if math.isnan(mean) else float(mean)
    return means
