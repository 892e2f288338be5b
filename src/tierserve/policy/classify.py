"""Layer 2, task classification: an explicit hint, then keyword rules, then a learned classifier.

The learned classifier is a protocol here (it lives in
:mod:`tierserve.prompt_models.task_classifier`, which needs an embedding model); a calibrated
probability under the policy's minimum gives ``unknown`` rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tierserve.errors import InvalidRequestError
from tierserve.policy.spec import Policy, TaskClass, mentions

__all__ = ["TaskDecision", "TaskPredictor", "TaskSource", "classify_task"]

TaskSource = Literal["hint", "rule", "classifier", "fallback"]
"""How the task class was found: the caller's hint, a keyword rule, the classifier, or none
of them (unknown)."""


class TaskPredictor(Protocol):
    def predict(self, text: str) -> tuple[TaskClass, float]:
        """The most likely task class and its calibrated probability."""
        ...


@dataclass(frozen=True, slots=True)
class TaskDecision:
    task: TaskClass
    source: TaskSource
    probability: float | None
    reason: str


def classify_task(
    policy: Policy, text: str, hint: str | None, predictor: TaskPredictor | None
) -> TaskDecision:
    if hint is not None:
        try:
            task = TaskClass(hint)
        except ValueError:
            raise InvalidRequestError(
                "the task hint is not a task class",
                hint=f"use one of {[t.value for t in TaskClass]}",
                param="task",
            ) from None
        return TaskDecision(task, "hint", None, f"task={task}(hint)")
    for rule in policy.task_rules:
        matched = next((p for p in rule.any_of if mentions(text, p)), None)
        if matched is not None:
            return TaskDecision(rule.task, "rule", None, f"task={rule.task}(rule:{matched!r})")
    if predictor is None:
        return TaskDecision(TaskClass.UNKNOWN, "fallback", None, "task=unknown(no rule matched)")
    task, probability = predictor.predict(text)
    if probability < policy.classifier_min_probability:
        return TaskDecision(
            TaskClass.UNKNOWN,
            "classifier",
            probability,
            f"task=unknown(classifier {task} p={probability:.2f}"
            f"<{policy.classifier_min_probability:.2f})",
        )
    return TaskDecision(task, "classifier", probability, f"task={task}(p={probability:.2f})")
