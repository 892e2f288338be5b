"""The gate after each step: accept the answer or escalate, with a reason code.

Reason codes are short, machine-readable and stable, e.g. ``conf=0.42<0.60 => escalate medium``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Outcome", "Verdict", "gate_confidence", "gate_failure"]


class Outcome(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str


def _pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers so that their printed order matches their real order."""
    for digits in (2, 4, 6):
        shown = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if shown[0] != shown[1] or value == threshold:
            return shown
    return f"{value!r}", f"{threshold!r}"


def gate_confidence(
    tier: str, confidence: float, threshold: float | None, next_tier: str | None
) -> Verdict:
    """Accept when confidence clears the tier's threshold, or when no stronger tier is left."""
    if next_tier is None or threshold is None:
        return Verdict(Outcome.ACCEPT, f"conf={confidence:.2f}, last tier => accept {tier}")
    value, bar = _pair(confidence, threshold)
    if confidence >= threshold:
        return Verdict(Outcome.ACCEPT, f"conf={value}>={bar} => accept {tier}")
    return Verdict(Outcome.ESCALATE, f"conf={value}<{bar} => escalate {next_tier}")


def gate_failure(failure: str, next_tier: str | None) -> Verdict:
    """A tier failed (error, timeout). Escalate if possible; the caller raises otherwise."""
    if next_tier is None:
        return Verdict(Outcome.ESCALATE, f"{failure}, last tier => fail")
    return Verdict(Outcome.ESCALATE, f"{failure} => escalate {next_tier}")
