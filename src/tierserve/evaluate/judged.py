"""RouteLLM's judged outcomes: MT-Bench judgements, one JSON line per (question, model, turn).

    {"question_id": 81, "model": "gpt-4-1106-preview", "judge": ["gpt-4", "single-v1"],
     "user_prompt": "...[Question]\\n<the question>\\n\\n[The Start of Assistant's Answer]...",
     "judgment": "... Rating: [[9]]", "score": 9, "turn": 1, "tstamp": 1714636116.7}

A request is a question; a model's quality on it is its mean judge score over the turns judged,
mapped from the judge's 1-10 scale to 0-1 as ``(score - 1) / 9`` (the mapping is stated in the
import's notes). A score of -1 (the judge gave no rating), a blank or a non-number is refused
with its line named, unless the caller drops such questions. The question text comes from
MT-Bench's ``question.jsonl`` when given (``question_id``, ``turns``), else from the turn-1
judge prompt. The files carry no prices: a turn costs the judged text's estimated tokens
(characters / 4) at the model's price per million tokens.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tierserve.errors import ConfigError
from tierserve.evaluate.importers import (
    DROP_HINT,
    UNCHOSEN,
    Imported,
    TierChoice,
    priced_tiers,
    stable_split,
)
from tierserve.evaluate.outcomes import Labels, OutcomeRow, OutcomeSet, TierOutcome

__all__ = ["JUDGE_SCALE", "read_judged"]

JUDGE_SCALE = (1.0, 10.0)
_QUESTION = re.compile(r"\[Question\]\n(.*?)\n\n\[The Start of", re.S)
_FIRST_TURN = re.compile(r"### User:\n(.*?)\n\n### Assistant A:", re.S)


def _lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such file", hint="check the path")
    text = path.read_text(errors="replace")
    if not text.strip():
        raise ConfigError(f"{path} is empty", hint="check the download")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise ConfigError(
                f"{path}:{number} is not JSON ({error.msg})",
                hint="the file may be truncated: check the download",
            ) from None
        if not isinstance(item, dict):
            raise ConfigError(f"{path}:{number} is not a JSON object")
        found.append((number, item))
    return found


def _score(item: Mapping[str, Any]) -> float | None:
    """The judge's score, or None when there is none (blank, -1, not a number)."""
    value = item.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    low, high = JUDGE_SCALE
    return float(value) if low <= value <= high else None


def _questions(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    texts = {}
    for number, item in _lines(path):
        turns = item.get("turns")
        if "question_id" not in item or not isinstance(turns, list) or not turns:
            raise ConfigError(
                f"{path}:{number} is not an MT-Bench question (question_id, turns)",
                hint="pass MT-Bench's question.jsonl as --questions",
            )
        texts[str(item["question_id"])] = str(turns[0])
    return texts


def _asked(item: Mapping[str, Any]) -> str | None:
    prompt = str(item.get("user_prompt") or "")
    found = _QUESTION.search(prompt) or _FIRST_TURN.search(prompt)
    return found.group(1).strip() if found else None


def read_judged(
    path: Path,
    *,
    choice: TierChoice = UNCHOSEN,
    questions: Path | None = None,
    prices: Mapping[str, float] | None = None,
    test_fraction: float = 0.5,
    drop_unscored: bool = False,
) -> Imported:
    lines = _lines(path)
    asked = _questions(questions)
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    chars: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    seen: dict[tuple[str, str, str], int] = {}
    unscored: set[str] = set()
    for number, item in lines:
        missing = [k for k in ("question_id", "model", "score") if k not in item]
        if missing:
            raise ConfigError(
                f"{path}:{number} has no {missing[0]!r}",
                hint="expected RouteLLM's judgements.jsonl: question_id, model, score, turn",
            )
        question, model = str(item["question_id"]), str(item["model"])
        key = (question, model, str(item.get("turn", 1)))
        if key in seen:
            raise ConfigError(
                f"{path}:{number} judges question {question} turn {key[2]} of {model} again "
                f"(line {seen[key]} did)",
                hint="keep one judgement per question, model and turn",
            )
        seen[key] = number
        score = _score(item)
        if score is None:
            if not drop_unscored:
                raise ConfigError(
                    f"{path}:{number}, column 'score': {item.get('score')!r} is not a judge "
                    f"score from {JUDGE_SCALE[0]:g} to {JUDGE_SCALE[1]:g}",
                    hint=DROP_HINT,
                )
            unscored.add(question)
            continue
        scores[question][model].append(score)
        chars[question][model] += len(str(item.get("user_prompt") or ""))
        if question not in asked and str(item.get("turn", 1)) == "1":
            text = _asked(item)
            if text:
                asked[question] = text
    models = sorted({m for by_model in scores.values() for m in by_model})
    tiers, how, prices = priced_tiers(path, models, choice, prices)
    low, high = JUDGE_SCALE
    rows = []
    for question in sorted(scores, key=lambda q: (len(q), q)):
        by_model = scores[question]
        lacking = [m for m in tiers if m not in by_model]
        if question in unscored or lacking:
            if not drop_unscored:
                raise ConfigError(
                    f"{path}: question {question} has no judgement of {lacking[0]}",
                    hint=DROP_HINT,
                )
            continue
        if question not in asked:
            raise ConfigError(
                f"{path}: the text of question {question} is not in its judge prompt",
                hint="pass MT-Bench's question.jsonl as --questions",
            )
        outcomes = {
            m: TierOutcome(
                quality=(sum(by_model[m]) / len(by_model[m]) - low) / (high - low),
                cost=chars[question][m] // 4 * prices[m] / 1e6,
            )
            for m in tiers
        }
        rows.append(
            OutcomeRow(
                id=f"mt-bench-{question}",
                prompt=asked[question],
                split=stable_split(asked[question], test_fraction),
                labels=Labels(checker="judge-score", source="routellm-judgements"),
                outcomes=outcomes,
            )
        )
    if not rows:
        raise ConfigError(f"{path}: no question is left to evaluate", hint="check the file")
    dropped = len(set(scores) | unscored) - len(rows)
    notes = [
        how,
        f"quality = (mean judge score over turns - {low:g}) / {high - low:g} (judge scale "
        f"{low:g}-{high:g}); an answer counts acceptable at quality >= 0.5 (score >= 5.5)",
        "cost: the judged text's characters / 4 tokens at the price per million",
    ]
    return Imported(OutcomeSet.of(rows, tiers), str(path), dropped, notes)
