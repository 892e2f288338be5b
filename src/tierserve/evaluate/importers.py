"""Published outcome data into :class:`~tierserve.evaluate.outcomes.OutcomeSet`.

* RouteLLM's two-model CSVs (``prompt, <weak>, <strong>, <weak>_response, <strong>_response``
  with True/False correctness), e.g. ``gsm8k_responses.csv``. They carry no prices: each answer
  costs its estimated tokens (prompt + response characters / 4) at a price per million tokens,
  by default the blended prices the RouteLLM paper uses (GPT-4 $24.7, Mixtral-8x7B $0.24).
* RouterBench's multi-model tables (``prompt``, ``eval_name``, one correctness column per model
  and ``<model>|total_cost`` columns with real prices; ``.pkl``, ``.csv`` or ``.parquet``):
  every model with a cost column becomes a tier, cheapest first.

Rows are split into train and test by a hash of the prompt, so a split is stable across runs
and machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from tierserve.errors import ConfigError
from tierserve.evaluate.outcomes import Labels, OutcomeRow, OutcomeSet, TierOutcome

__all__ = ["ROUTELLM_PRICES", "read_routellm_csv", "read_routerbench", "stable_split"]

ROUTELLM_PRICES = {
    "gpt-4-1106-preview": 24.7,
    "mistralai/Mixtral-8x7B-Instruct-v0.1": 0.24,
}
"""USD per million tokens (input and output blended), as in the RouteLLM paper."""


def stable_split(key: str, test_fraction: float = 0.5) -> Literal["train", "test"]:
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if bucket < test_fraction else "train"


def _truth(value: Any, where: str) -> float:
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0"):
        return 1.0
    if text in ("false", "0", "0.0"):
        return 0.0
    raise ConfigError(f"{where}: expected True/False, got {value!r}")


def read_routellm_csv(
    path: Path,
    *,
    prices: Mapping[str, float] | None = None,
    test_fraction: float = 0.5,
    source: str = "routellm",
) -> OutcomeSet:
    import pandas as pd

    frame = pd.read_csv(path)
    models = [c for c in frame.columns if c != "prompt" and not c.endswith("_response")]
    if "prompt" not in frame.columns or len(models) < 2:
        raise ConfigError(
            f"{path}: not a RouteLLM responses CSV (columns {list(frame.columns)})",
            hint="expected prompt, <model>..., <model>_response...",
        )
    prices = dict(ROUTELLM_PRICES if prices is None else prices)
    missing = [m for m in models if m not in prices]
    if missing:
        raise ConfigError(
            f"no price for {missing}", hint="pass prices={model: USD per million tokens}"
        )
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        prompt = str(record["prompt"])
        outcomes = {}
        for model in models:
            response = str(record.get(f"{model}_response") or "")
            tokens = (len(prompt) + len(response)) // 4
            outcomes[model] = TierOutcome(
                quality=_truth(record[model], f"{path} row {index + 2} {model}"),
                cost=tokens * prices[model] / 1e6,
                prompt_tokens=len(prompt) // 4,
                completion_tokens=len(response) // 4,
                answer=response,
            )
        rows.append(
            OutcomeRow(
                id=f"{source}-{index:05d}",
                prompt=prompt,
                split=stable_split(prompt, test_fraction),
                labels=Labels(checker="routellm-correctness", source=source),
                outcomes=outcomes,
            )
        )
    return OutcomeSet.of(rows)


def read_routerbench(path: Path, *, test_fraction: float = 0.5) -> OutcomeSet:
    import pandas as pd

    if path.suffix == ".pkl":
        frame = pd.read_pickle(path)
    elif path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path)
    models = [c.removesuffix("|total_cost") for c in frame.columns if c.endswith("|total_cost")]
    absent = [m for m in models if m not in frame.columns]
    if "prompt" not in frame.columns or not models or absent:
        raise ConfigError(
            f"{path}: not a RouterBench table (models {models}, without correctness {absent})",
            hint="expected prompt, <model> (correctness), <model>|total_cost columns",
        )
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        prompt = str(record["prompt"])
        key = str(record.get("sample_id", index))
        outcomes = {
            model: TierOutcome(
                quality=min(1.0, max(0.0, float(record[model]))),
                cost=float(record[f"{model}|total_cost"]),
                answer=str(record.get(f"{model}|model_response") or "") or None,
            )
            for model in models
        }
        rows.append(
            OutcomeRow(
                id=f"routerbench-{key}",
                prompt=prompt,
                split=stable_split(key + prompt, test_fraction),
                labels=Labels(
                    task=str(record["eval_name"]) if "eval_name" in record else None,
                    checker="routerbench-performance",
                    source="routerbench",
                ),
                outcomes=outcomes,
            )
        )
    return OutcomeSet.of(rows)
