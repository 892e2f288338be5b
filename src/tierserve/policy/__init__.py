"""Pure routing core: no Ray, vLLM or HTTP imports. Readable and testable in milliseconds."""

from tierserve.policy.cascade import (
    AnswerStarted,
    Cascade,
    CascadeEvent,
    CascadeFinished,
    CascadeResult,
    LadderStep,
    StepRecord,
    TextDelta,
)
from tierserve.policy.gate import Outcome, Verdict, gate_confidence, gate_failure

__all__ = [
    "AnswerStarted",
    "Cascade",
    "CascadeEvent",
    "CascadeFinished",
    "CascadeResult",
    "LadderStep",
    "Outcome",
    "StepRecord",
    "TextDelta",
    "Verdict",
    "gate_confidence",
    "gate_failure",
]
