"""Layer 1, eligibility: who is asking, how sensitive the input is, which tiers may serve it."""

from __future__ import annotations

from dataclasses import dataclass

from tierserve.pii import detect_pii
from tierserve.policy.keys import key_fingerprint, key_matches
from tierserve.policy.spec import Policy, TenantSpec

__all__ = [
    "Eligibility",
    "allowed_tiers",
    "caller_scope",
    "check_eligibility",
    "default_tenant",
    "key_owner",
    "resolve_tenant",
]


def key_owner(policy: Policy, api_key: str | None) -> TenantSpec | None:
    """The tenant whose plain, environment or hashed keys include ``api_key``; None when the
    key is missing or nobody's."""
    if not api_key:
        return None
    for tenant in policy.tenants:
        if api_key in tenant.api_keys:
            return tenant
    for tenant in policy.tenants:
        if any(key_matches(api_key, stored) for stored in tenant.api_key_hashes):
            return tenant
    return None


def resolve_tenant(policy: Policy, api_key: str | None) -> TenantSpec:
    """The tenant owning ``api_key``; unknown or missing keys get the default tenant (a
    keyed policy refuses them before planning: see ``policy.auth.require_keys``)."""
    owner = key_owner(policy, api_key)
    return owner if owner is not None else default_tenant(policy)


def default_tenant(policy: Policy) -> TenantSpec:
    return next(t for t in policy.tenants if t.id == policy.default_tenant)


def caller_scope(api_key: str | None, owner: TenantSpec | None) -> str | None:
    """Whose cached answers and session state a request may share: its tenant's, when a
    registered key authenticated it; its own key's (hashed), when the key is unknown; nobody's
    (None) for a caller without a key, so no anonymous caller learns what another asked.
    ``owner``: the key's tenant (``key_owner``), None for an unknown key."""
    if api_key is None:
        return None
    if owner is not None:
        return f"tenant:{owner.id}"
    return "key:" + key_fingerprint(api_key)


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


def logged_eligibility(policy: Policy, tenant_id: str, pii: tuple[str, ...]) -> Eligibility:
    """What a logged request may use under ``policy``: its tenant's tiers (a tenant the policy
    no longer has, any tier) for the personal data it held."""
    tenant = next((t for t in policy.tenants if t.id == tenant_id), None)
    allowed, reasons = allowed_tiers(policy, tenant, pii)
    kept = tenant or TenantSpec(id=tenant_id)
    return Eligibility(tenant=kept, pii=pii, allowed_tiers=allowed, reasons=reasons)
