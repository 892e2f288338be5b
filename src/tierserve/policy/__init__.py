"""Pure routing core: no Ray, vLLM or HTTP imports. Readable and testable in milliseconds.

eligibility -> task classification -> risk and complexity -> plan (the ladder) -> runner
(generate, validate, gate, escalate).
"""

from tierserve.policy.gate import NextStep, Outcome, Verdict, gate_step
from tierserve.policy.plan import RequestFeatures, RoutePlan, plan_route
from tierserve.policy.runner import Ladder, LadderResult, LadderRunner, StepRecord
from tierserve.policy.spec import Policy, TaskClass, load_policy

__all__ = [
    "Ladder",
    "LadderResult",
    "LadderRunner",
    "NextStep",
    "Outcome",
    "Policy",
    "RequestFeatures",
    "RoutePlan",
    "StepRecord",
    "TaskClass",
    "Verdict",
    "gate_step",
    "load_policy",
    "plan_route",
]
