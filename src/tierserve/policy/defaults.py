"""The policy used when the stack config names none: one route climbing every tier."""

from __future__ import annotations

from tierserve.config import StackConfig
from tierserve.policy.spec import LadderStepSpec, Policy, RouteSpec, TaskClass, TenantSpec
from tierserve.signals.confidence import signal_name

__all__ = ["cascade_policy"]


def cascade_policy(config: StackConfig) -> Policy:
    """Cascade v1 as a policy: each tier gated by its ``confidence_threshold``, the last
    accepted. The thresholds live in the stack config only when it names no policy file."""
    config.check_thresholds(policy_file=False)
    *gated, last = config.tiers
    ladder = [LadderStepSpec(tier=t.name, min_confidence=t.confidence_threshold) for t in gated]
    return Policy(
        version="cascade-v1",
        tiers=[tier.name for tier in config.tiers],
        confidence_signal=signal_name(config.cascade.confidence_quantile),
        tenants=[TenantSpec(id="default")],
        default_tenant="default",
        routes=[
            RouteSpec(
                name="cascade",
                tasks=list(TaskClass),
                ladder=[*ladder, LadderStepSpec(tier=last.name)],
            )
        ],
    )
