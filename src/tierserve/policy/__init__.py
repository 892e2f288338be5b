"""Pure routing core: no Ray, vLLM or HTTP imports. Readable and testable in milliseconds.

eligibility -> task classification -> risk and complexity -> plan -> ladder composition
(pinning, session floors, schemas) -> the ladder kernel (verdict and next step after each
step), which the serving runner, replay and the offline sweeps all walk.
"""

from tierserve.policy.ladder import Ladder, decide, start
from tierserve.policy.plan import RequestFacts, RoutePlan, plan_route
from tierserve.policy.runner import LadderResult, LadderRunner
from tierserve.policy.spec import Policy, TaskClass, load_policy
from tierserve.policy.step import FailureKind, Outcome, Step

__all__ = [
    "FailureKind",
    "Ladder",
    "LadderResult",
    "LadderRunner",
    "Outcome",
    "Policy",
    "RequestFacts",
    "RoutePlan",
    "Step",
    "TaskClass",
    "decide",
    "load_policy",
    "plan_route",
    "start",
]
