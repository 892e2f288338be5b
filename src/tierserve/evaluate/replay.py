"""Counterfactual replay: the decision log (``tierserve log export``) under a candidate policy.

Each logged request keeps its tenant, PII kinds, task, risk and complexity; the candidate
policy picks its route and eligible ladder, and the ladder is walked over what was recorded:

* a tier the request was already answered or tried on is judged again from its recorded
  confidence and validator results, against the candidate's threshold and validators;
* a tier never tried, a validator never run, or a changed contract (constrained decoding,
  extra context) would need a new generation: the request is ``unknown`` from there, and only
  the recorded part is counted.

Cost is the recorded cost of every tier the candidate walks. Expected quality, when per-tier
quality rates are given (from an outcome set of the same traffic), is the answering tier's
rate; a safe failure counts 0 and human review is reported apart. Cache hits and requests
pinned to a tier are not routed, so they are counted but not replayed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tierserve.observe.record import DecisionRecord, StepLog
from tierserve.policy.eligibility import allowed_tiers
from tierserve.policy.plan import eligible_steps, route_for
from tierserve.policy.spec import LadderStepSpec, Policy, RiskLevel, TaskClass
from tierserve.validate import read_code

__all__ = ["Replayed", "replay", "replay_one"]


@dataclass(frozen=True, slots=True)
class Replayed:
    request_id: str
    route_before: str
    route_after: str
    answered_before: str
    answered_after: str
    """The answering tier or outcome under the candidate; 'unknown' if it needs a generation."""
    cost_before: float
    cost_after: float
    """Cost of the recorded steps the candidate walks (a lower bound when unknown)."""
    reason: str


def _allowed(policy: Policy, record: DecisionRecord) -> tuple[str, ...]:
    tenant = next((t for t in policy.tenants if t.id == record.tenant), None)
    return allowed_tiers(policy, tenant, tuple(record.pii))[0]


def _judge(step: LadderStepSpec, seen: StepLog) -> bool | None:
    """Would ``step`` accept the recorded answer? None when the record cannot tell."""
    new_context = step.extra_context is not None and not seen.extra_context
    if step.constrained != seen.constrained or new_context:
        return None
    results = dict(read_code(code) for code in seen.validations)
    if any(name not in results for name in step.validators):
        return None
    passed = all(results[name] for name in step.validators)
    confident = step.min_confidence is None or (
        seen.confidence is not None and seen.confidence >= step.min_confidence
    )
    return passed and confident


def replay_one(policy: Policy, record: DecisionRecord) -> Replayed:
    route = route_for(policy, TaskClass(record.task), RiskLevel(record.risk))
    steps, _ = eligible_steps(policy, route, _allowed(policy, record), record.complex_input)
    recorded = {s.tier: s for s in record.steps if s.tier is not None}
    cost = 0.0

    def done(answered: str, reason: str) -> Replayed:
        return Replayed(
            record.request_id,
            record.route,
            route.name,
            record.answered_by,
            answered,
            record.cost_usd,
            cost,
            reason,
        )

    for index, step in enumerate(steps):
        if step.action != "generate":
            return done(step.action, f"ladder => {step.action}")
        seen = recorded.get(step.tier or "")
        if seen is None:
            return done("unknown", f"{step.tier} was never tried: needs a generation")
        cost += seen.cost_usd
        verdict = _judge(step, seen)
        if verdict is None:
            return done("unknown", f"{step.tier}: contract or validators differ from the record")
        last = index == len(steps) - 1
        if verdict or (last and route.on_exhausted == "accept_last"):
            if route.review_required:
                return done("human_review", f"{step.tier} accepted; route requires review")
            return done(str(step.tier), f"{step.tier} accepted")
        if last:
            return done(route.on_exhausted, f"{step.tier} rejected => {route.on_exhausted}")
    raise AssertionError("an eligible ladder always has a step")  # pragma: no cover


def replay(
    policy: Policy,
    records: Iterable[DecisionRecord],
    tier_quality: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    replayed: list[Replayed] = []
    skipped: Counter[str] = Counter()
    for record in records:
        if record.cache == "hit":
            skipped["cache_hit"] += 1
        elif "/" in record.model_requested:
            skipped["pinned_tier"] += 1
        else:
            replayed.append(replay_one(policy, record))
    known = [r for r in replayed if r.answered_after != "unknown"]

    def quality(answered: str) -> float:
        assert tier_quality is not None
        return 0.0 if answered == "safe_failure" else tier_quality.get(answered, 0.0)

    result: dict[str, Any] = {
        "candidate_policy": policy.version,
        "records": len(replayed) + sum(skipped.values()),
        "replayed": len(replayed),
        "skipped": dict(skipped),
        "route_changed": sum(r.route_before != r.route_after for r in replayed),
        "answer_source_changed": sum(r.answered_before != r.answered_after for r in known),
        "unknown": len(replayed) - len(known),
        "transitions": dict(Counter(f"{r.answered_before}->{r.answered_after}" for r in replayed)),
        # Costs and expected quality are summed over the known requests only: an unknown
        # one's cost under the candidate is not in the record.
        "totals_over_known_requests": len(known),
        "cost_before": sum(r.cost_before for r in known),
        "cost_after": sum(r.cost_after for r in known),
        "changed": [asdict(r) for r in replayed if r.answered_before != r.answered_after][:50],
    }
    if tier_quality is not None:
        scored = [r for r in known if "human_review" not in (r.answered_before, r.answered_after)]
        for side in ("before", "after"):
            values = [quality(getattr(r, f"answered_{side}")) for r in scored]
            result[f"expected_quality_{side}"] = sum(values) / len(values) if values else None
    return result
