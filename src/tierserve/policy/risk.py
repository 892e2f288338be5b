"""Layer 3, risk and complexity: what could go wrong, and how hard the request looks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tierserve.policy.spec import RiskLevel, RiskRules, TenantSpec, mentions

__all__ = ["RiskAssessment", "assess_risk"]

_ENTITY = re.compile(r"\b(?:[A-Z][a-z]+(?: [A-Z][a-z]+)*|\d[\d,.:/-]*)\b")


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    risk: RiskLevel
    complex: bool
    factors: tuple[str, ...]

    @property
    def reason(self) -> str:
        detail = f"({','.join(self.factors)})" if self.factors else ""
        return f"risk={self.risk}{detail},complexity={'high' if self.complex else 'low'}"


def assess_risk(
    rules: RiskRules,
    text: str,
    tenant: TenantSpec,
    *,
    session_escalated: bool,
) -> RiskAssessment:
    risky = [p for p in rules.high_risk_phrases if mentions(text, p)]
    factors = [f"keyword:{p}" for p in risky]
    if tenant.importance == "high":
        factors.append("importance=high")
    if session_escalated and rules.escalated_sessions_are_high_risk:
        factors.append("session_escalated")
    high = bool(factors)
    complexity = []
    if len(text) > rules.long_input_chars:
        complexity.append(f"long_input={len(text)}")
    entities = len(_ENTITY.findall(text))
    if entities > rules.many_entities:
        complexity.append(f"entities={entities}")
    return RiskAssessment(
        risk=RiskLevel.HIGH if high else RiskLevel.LOW,
        complex=bool(complexity),
        factors=tuple(factors + complexity),
    )
