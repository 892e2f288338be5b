"""The policy used when the stack config names none: one route climbing every tier."""

from __future__ import annotations

from collections.abc import Sequence

from tierserve.policy.spec import LadderStepSpec, Policy, RouteSpec, TaskClass, TenantSpec

__all__ = ["cascade_policy"]


def cascade_policy(tiers: Sequence[tuple[str, float | None]]) -> Policy:
    """Cascade v1 as a policy: each tier gated by its confidence threshold, the last accepted."""
    names = [name for name, _ in tiers]
    ladder = [LadderStepSpec(tier=name, min_confidence=threshold) for name, threshold in tiers]
    ladder[-1] = LadderStepSpec(tier=names[-1])
    return Policy(
        version="cascade-v1",
        tiers=names,
        tenants=[TenantSpec(id="default")],
        default_tenant="default",
        routes=[RouteSpec(name="cascade", tasks=list(TaskClass), ladder=ladder)],
    )
