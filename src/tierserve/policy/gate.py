"""The gate after each step: accept, escalate, send to human review, or fail safely.

Reason codes are short, machine-readable and stable, e.g.
``conf=0.42<0.60 => escalate medium`` or ``schema=fail(severity: ...) => escalate large``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from tierserve.validate import ValidationResult

__all__ = ["NextStep", "Outcome", "Verdict", "gate_step"]


class Outcome(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"
    HUMAN_REVIEW = "human_review"
    SAFE_FAILURE = "safe_failure"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str


@dataclass(frozen=True, slots=True)
class NextStep:
    """Where a failing step goes: the next tier, a terminal action, or the route's fallback."""

    kind: Literal["tier", "human_review", "safe_failure", "accept_last"]
    tier: str | None = None

    def verdict(self, why: str) -> Verdict:
        if self.kind == "tier":
            return Verdict(Outcome.ESCALATE, f"{why} => escalate {self.tier}")
        if self.kind == "accept_last":
            return Verdict(Outcome.ACCEPT, f"{why}, last step => accept")
        return Verdict(Outcome(self.kind), f"{why} => {self.kind}")


def _pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers so that their printed order matches their real order."""
    for digits in (2, 4, 6):
        shown = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if shown[0] != shown[1] or value == threshold:
            return shown
    return f"{value!r}", f"{threshold!r}"


def gate_step(
    tier: str,
    confidence: float,
    threshold: float | None,
    validations: Sequence[ValidationResult],
    next_step: NextStep,
) -> Verdict:
    """Accept when every validator passes and confidence clears the threshold."""
    failed = [v.code for v in validations if not v.passed]
    if threshold is None:
        confidence_code, confident = f"conf={confidence:.2f}", True
    else:
        value, bar = _pair(confidence, threshold)
        confident = confidence >= threshold
        confidence_code = f"conf={value}{'>=' if confident else '<'}{bar}"
    if not failed and confident:
        return Verdict(Outcome.ACCEPT, f"{confidence_code} => accept {tier}")
    return next_step.verdict(",".join([*failed, confidence_code] if not confident else failed))
