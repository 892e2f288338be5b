"""Per-tenant request and token rate limits, counted in sliding windows by the ``limits``
library.

:class:`TenantQuota` keeps the counters of one process. The gateway's replicas share one, held
by a Ray actor (:mod:`tierserve.serve.quota_actor`), so a tenant's minute is the same whichever
replica answers; unit tests use it directly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from tierserve.errors import RateLimitError
from tierserve.policy.spec import RateLimitSpec

__all__ = ["LocalQuota", "Quota", "QuotaRefusal", "TenantQuota"]


@dataclass(frozen=True, slots=True)
class QuotaRefusal:
    kind: Literal["requests", "tokens"]
    limit: int
    retry_after_s: float

    @property
    def reason(self) -> str:
        return f"rate_limit={self.kind}>{self.limit}/min"

    def error(self, tenant: str) -> RateLimitError:
        return RateLimitError(
            f"tenant {tenant!r} is over its limit of {self.limit} {self.kind} per minute",
            hint=f"retry after {self.retry_after_s:.0f} s, or ask for a higher rate_limit",
            retry_after_s=self.retry_after_s,
        )


class TenantQuota:
    """Sliding-window counters per tenant (the ``limits`` library's sliding window counter:
    two fixed windows weighted, constant memory however large the token budget)."""

    def __init__(self) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def _refusal(
        self, kind: Literal["requests", "tokens"], item: RateLimitItem, tenant: str
    ) -> QuotaRefusal:
        reset = self._limiter.get_window_stats(item, tenant, kind).reset_time
        return QuotaRefusal(kind, item.amount, max(1.0, reset - time.time()))

    def admit(self, tenant: str, rate: RateLimitSpec) -> QuotaRefusal | None:
        """Counts one request of ``tenant``, or refuses it (counting nothing) when its tokens or
        requests of the last minute are at the limit."""
        if rate.tokens_per_minute is not None:
            tokens = RateLimitItemPerMinute(rate.tokens_per_minute)
            if not self._limiter.test(tokens, tenant, "tokens"):
                return self._refusal("tokens", tokens, tenant)
        if rate.requests_per_minute is not None:
            requests = RateLimitItemPerMinute(rate.requests_per_minute)
            if not self._limiter.hit(requests, tenant, "requests"):
                return self._refusal("requests", requests, tenant)
        return None

    def charge(self, tenant: str, rate: RateLimitSpec, tokens: int) -> None:
        """Counts the tokens an admitted request used; an answer bigger than what is left
        fills the window (the limiter refuses a hit over the limit rather than counting it)."""
        if rate.tokens_per_minute is None or tokens <= 0:
            return
        item = RateLimitItemPerMinute(rate.tokens_per_minute)
        if not self._limiter.hit(item, tenant, "tokens", cost=tokens):
            left = self._limiter.get_window_stats(item, tenant, "tokens").remaining
            if left > 0:
                self._limiter.hit(item, tenant, "tokens", cost=left)


class Quota(Protocol):
    """Where the service checks and charges a tenant's rate limits."""

    async def admit(self, tenant: str, rate: RateLimitSpec) -> QuotaRefusal | None: ...

    async def charge(self, tenant: str, rate: RateLimitSpec, tokens: int) -> None: ...


class LocalQuota:
    """One process's counters (a single gateway replica, unit tests)."""

    def __init__(self) -> None:
        self._quota = TenantQuota()
        self._lock = asyncio.Lock()

    async def admit(self, tenant: str, rate: RateLimitSpec) -> QuotaRefusal | None:
        async with self._lock:
            return self._quota.admit(tenant, rate)

    async def charge(self, tenant: str, rate: RateLimitSpec, tokens: int) -> None:
        async with self._lock:
            self._quota.charge(tenant, rate, tokens)
