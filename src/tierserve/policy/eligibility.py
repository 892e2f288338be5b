"""Layer 1, eligibility: who is asking, how sensitive the input is, which tiers may serve it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tierserve.policy.spec import Policy, TenantSpec

__all__ = ["Eligibility", "check_eligibility", "detect_pii", "resolve_tenant"]

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()-]{8,}\d\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def detect_pii(text: str) -> tuple[str, ...]:
    """Kinds of personal data found in ``text`` (email, phone, ssn, card, iban), sorted."""
    found = set()
    if _EMAIL.search(text):
        found.add("email")
    if _SSN.search(text):
        found.add("ssn")
    for match in _CARD.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            found.add("card")
    if _IBAN.search(text):
        found.add("iban")
    rest = _IBAN.sub(" ", _SSN.sub(" ", _CARD.sub(" ", text)))
    for match in _PHONE.finditer(rest):
        if 9 <= len(re.sub(r"\D", "", match.group())) <= 15:  # E.164 numbers have at most 15
            found.add("phone")
    return tuple(sorted(found))


def resolve_tenant(policy: Policy, api_key: str | None) -> TenantSpec:
    """The tenant owning ``api_key``; unknown or missing keys get the default tenant."""
    for tenant in policy.tenants:
        if api_key is not None and api_key in tenant.api_keys:
            return tenant
    return next(t for t in policy.tenants if t.id == policy.default_tenant)


@dataclass(frozen=True, slots=True)
class Eligibility:
    tenant: TenantSpec
    pii: tuple[str, ...]
    allowed_tiers: tuple[str, ...]
    reasons: tuple[str, ...]


def check_eligibility(policy: Policy, tenant: TenantSpec, text: str) -> Eligibility:
    allowed = list(policy.tiers)
    reasons = []
    if tenant.allowed_tiers is not None:
        allowed = [t for t in allowed if t in tenant.allowed_tiers]
        reasons.append(f"tenant={tenant.id}({tenant.compliance}) allows {','.join(allowed)}")
    else:
        reasons.append(f"tenant={tenant.id}({tenant.compliance})")
    pii = detect_pii(text)
    if pii and policy.pii_allowed_tiers is not None:
        allowed = [t for t in allowed if t in policy.pii_allowed_tiers]
        reasons.append(f"pii={','.join(pii)} => tiers {','.join(allowed) or 'none'}")
    return Eligibility(tenant=tenant, pii=pii, allowed_tiers=tuple(allowed), reasons=tuple(reasons))
