"""Layer 1, eligibility: who is asking, how sensitive the input is, which tiers may serve it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tierserve.pii import detect_pii
from tierserve.policy.spec import Policy, TenantSpec

__all__ = ["Eligibility", "allowed_tiers", "caller_scope", "check_eligibility", "resolve_tenant"]


def resolve_tenant(policy: Policy, api_key: str | None) -> TenantSpec:
    """The tenant owning ``api_key``; unknown or missing keys get the default tenant."""
    for tenant in policy.tenants:
        if api_key is not None and api_key in tenant.api_keys:
            return tenant
    return next(t for t in policy.tenants if t.id == policy.default_tenant)


def caller_scope(policy: Policy, api_key: str | None) -> str | None:
    """Whose cached answers and session state a request may share: its tenant's, when a
    registered key authenticated it; its own key's (hashed), when the key is unknown; nobody's
    (None) for a caller without a key, so no anonymous caller learns what another asked."""
    if api_key is None:
        return None
    tenant = resolve_tenant(policy, api_key)
    if api_key in tenant.api_keys:
        return f"tenant:{tenant.id}"
    return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Eligibility:
    tenant: TenantSpec
    pii: tuple[str, ...]
    allowed_tiers: tuple[str, ...]
    reasons: tuple[str, ...]


def allowed_tiers(
    policy: Policy, tenant: TenantSpec | None, pii: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The tiers ``tenant`` may use for input holding ``pii``, and the reason codes."""
    allowed = list(policy.tiers)
    reasons = []
    if tenant is not None and tenant.allowed_tiers is not None:
        allowed = [t for t in allowed if t in tenant.allowed_tiers]
        reasons.append(f"tenant={tenant.id}({tenant.compliance}) allows {','.join(allowed)}")
    elif tenant is not None:
        reasons.append(f"tenant={tenant.id}({tenant.compliance})")
    if pii and policy.pii_allowed_tiers is not None:
        allowed = [t for t in allowed if t in policy.pii_allowed_tiers]
        reasons.append(f"pii={','.join(pii)} => tiers {','.join(allowed) or 'none'}")
    return tuple(allowed), tuple(reasons)


def check_eligibility(policy: Policy, tenant: TenantSpec, text: str) -> Eligibility:
    pii = detect_pii(text)
    allowed, reasons = allowed_tiers(policy, tenant, pii)
    return Eligibility(tenant=tenant, pii=pii, allowed_tiers=allowed, reasons=reasons)
