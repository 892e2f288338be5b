"""The rate-limit counters every gateway replica shares: one named Ray actor per app."""

from __future__ import annotations

from typing import Any

import ray

from tierserve.policy.spec import RateLimitSpec
from tierserve.quota import QuotaRefusal, TenantQuota

__all__ = ["SharedQuota"]


class SharedQuota:
    """A :class:`~tierserve.quota.Quota` over the app's counter actor, created by the first
    replica that needs it and found by the others (and by a restarted replica). Detached, so a
    gateway replica's death does not reset its tenants' minutes."""

    def __init__(self, app_name: str) -> None:
        # An actor runs one call at a time, so the counters need no lock.
        actor_class: Any = ray.remote(num_cpus=0, max_restarts=-1)(TenantQuota)
        self._actor = actor_class.options(
            name=f"tierserve-quota-{app_name}",
            namespace="serve",
            lifetime="detached",
            get_if_exists=True,
        ).remote()

    async def admit(self, tenant: str, rate: RateLimitSpec) -> QuotaRefusal | None:
        refusal: QuotaRefusal | None = await self._actor.admit.remote(tenant, rate)
        return refusal

    async def charge(self, tenant: str, rate: RateLimitSpec, tokens: int) -> None:
        await self._actor.charge.remote(tenant, rate, tokens)
