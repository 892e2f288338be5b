"""Layer 4, the plan: the route, its eligible ladder and the reason codes that chose them.

``plan_route`` is a pure function of the policy and the request's facts; the gateway's
``POST /v1/route/explain`` returns its result without generating anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from tierserve.policy.classify import TaskDecision, TaskPredictor, classify_task
from tierserve.policy.eligibility import Eligibility, check_eligibility, resolve_tenant
from tierserve.policy.kinds import KindDecision, question_kind
from tierserve.policy.risk import RiskAssessment, assess_risk
from tierserve.policy.spec import (
    LadderStepSpec,
    Policy,
    RiskLevel,
    RouteSpec,
    TaskClass,
    TenantSpec,
)
from tierserve.policy.start_router import PromptEmbedder, router_start

__all__ = [
    "Assessment",
    "RequestFacts",
    "RoutePlan",
    "assess_request",
    "eligible_steps",
    "plan_assessed",
    "plan_route",
    "route_for",
]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the planner may look at, read from the request once: no engine output, nothing
    from the network."""

    text: str
    """The user messages: what is classified and assessed for risk."""
    tenant: TenantSpec | None = None
    """The caller's tenant, as admission found it; None: found here from ``api_key``."""
    api_key: str | None = None
    task_hint: str | None = None
    session_floor_tier: str | None = None
    """The strongest tier this request's session has escalated to, if any."""
    other_text: str = ""
    """The system, developer and assistant messages: scanned for personal data like the user
    messages (a tier sees every message), but not classified."""
    tool_tiers: tuple[str, ...] | None = None
    """When the request offers tools: the tiers that can call them (a tool parser is
    configured); the others are skipped. None: no tools offered."""


@dataclass(frozen=True, slots=True)
class RoutePlan:
    policy_version: str
    route: RouteSpec
    eligibility: Eligibility
    task: TaskDecision
    risk: RiskAssessment
    steps: tuple[LadderStepSpec, ...]
    """The eligible ladder; may end in (or be only) a human_review / safe_failure step."""
    reasons: tuple[str, ...] = field(default=())
    session_floor: str | None = None
    """The session's floor the eligible ladder was cut at, if any."""
    kind: KindDecision | None = None
    """The question kind, when the policy asks for one of this task class."""
    skipped_tiers: tuple[str, ...] = ()
    """Tiers of the route's ladder this request does not climb (eligibility, tools, the
    session floor, a start router, complexity), cheapest first."""

    @property
    def first_action(self) -> str:
        first = self.steps[0]
        return first.tier if first.action == "generate" and first.tier else first.action

    @property
    def summary(self) -> str:
        """``task=faq,risk=low => small``: the one-line reason code of the plan."""
        return f"task={self.task.task},risk={self.risk.risk} => {self.first_action}"


def route_for(
    policy: Policy, task: TaskClass, risk: RiskLevel, kind: str | None = None
) -> RouteSpec:
    """The first route serving ``task`` at ``risk`` (or at any risk) and of ``kind`` (routes
    without ``kinds`` serve any kind)."""
    serving = [
        route
        for route in policy.routes
        if task in route.tasks and (route.kinds is None or kind in route.kinds)
    ]
    for route in serving:
        if route.risk in (None, risk):
            return route
    # Policy validation guarantees every task class has a route without kinds; a risk filter
    # may not.
    return serving[0]


def eligible_steps(
    policy: Policy,
    route: RouteSpec,
    allowed: tuple[str, ...],
    complex_input: bool,
    floor: str | None = None,
    tool_tiers: tuple[str, ...] | None = None,
    start: Callable[[list[str]], tuple[str, str]] | None = None,
) -> tuple[list[LadderStepSpec], list[str], tuple[str, ...]]:
    """The route's ladder without the tiers this request may not use, why, and the tiers
    skipped. ``start``: given the tiers left, the tier to start at and its reason code (a
    start router)."""
    reasons: list[str] = []
    steps = list(route.ladder)
    skipped: set[str] = set()

    def drop(keep: set[str], why: str) -> None:
        nonlocal steps
        removed = sorted(
            {s.tier for s in steps if s.tier is not None and s.tier not in keep},
            key=policy.tiers.index,
        )
        if removed:
            steps = [s for s in steps if s.tier is None or s.tier in keep]
            skipped.update(removed)
            reasons.append(f"{why} => skip {','.join(removed)}")

    drop(set(allowed), "eligibility")
    if tool_tiers is not None:
        drop(set(tool_tiers), "tools")
    if floor is not None and floor in policy.tiers:
        drop(set(policy.tiers[policy.tiers.index(floor) :]), f"session_floor={floor}")
    left = [s.tier for s in steps if s.action == "generate" and s.tier is not None]
    if start is not None and len(set(left)) > 1:
        tier, why = start(list(dict.fromkeys(left)))
        reasons.append(why)
        drop(set(policy.tiers[policy.tiers.index(tier) :]), "router")
    generating = [s for s in steps if s.action == "generate"]
    if complex_input and len({s.tier for s in generating}) > 1:
        weakest = generating[0].tier
        drop({t for t in policy.tiers if t != weakest}, "complexity=high")
    if not any(s.action == "generate" for s in steps):
        terminal = [s for s in steps if s.action != "generate"]
        if not terminal:
            action: Literal["human_review", "safe_failure"] = (
                "human_review" if route.on_exhausted == "human_review" else "safe_failure"
            )
            terminal = [LadderStepSpec(action=action)]
            reasons.append(f"no eligible tier => {action}")
        steps = terminal
    return steps, reasons, tuple(sorted(skipped, key=policy.tiers.index))


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the planner reads from a request before it picks a route: where it may be served,
    its task, its risk and its question kind. Serving reads it from the request
    (:func:`assess_request`); replay rebuilds it from the decision record, and both plan with
    :func:`plan_assessed`."""

    eligibility: Eligibility
    task: TaskDecision
    risk: RiskAssessment
    kind: KindDecision | None = None


def assess_request(
    policy: Policy,
    facts: RequestFacts,
    predictor: TaskPredictor | None = None,
    *,
    session_escalated: bool = False,
    embedder: PromptEmbedder | None = None,
) -> Assessment:
    tenant = facts.tenant or resolve_tenant(policy, facts.api_key)
    scanned = f"{facts.text}\n{facts.other_text}" if facts.other_text else facts.text
    eligibility = check_eligibility(policy, tenant, scanned)
    task = classify_task(policy, facts.text, facts.task_hint, predictor)
    risk = assess_risk(
        policy.risk,
        facts.text,
        tenant,
        session_escalated=session_escalated or facts.session_floor_tier is not None,
    )
    kind = question_kind(policy.question_kinds, task.task, embedder, facts.text)
    return Assessment(eligibility, task, risk, kind)


def plan_assessed(
    policy: Policy,
    assessed: Assessment,
    prompt: str | None,
    *,
    embedder: PromptEmbedder | None = None,
    session_floor: str | None = None,
    tool_tiers: tuple[str, ...] | None = None,
) -> RoutePlan:
    """The route and eligible ladder for an assessed request. ``prompt``: the user text a start
    router reads (None where the log kept no prompt: the ladder is climbed whole)."""
    kind = assessed.kind
    route = route_for(policy, assessed.task.task, assessed.risk.risk, kind.kind if kind else None)
    router = route.start_router
    steps, step_reasons, skipped = eligible_steps(
        policy,
        route,
        assessed.eligibility.allowed_tiers,
        assessed.risk.complex,
        session_floor,
        tool_tiers,
        router_start(router, embedder, prompt),
    )
    if router is not None and embedder is None:
        step_reasons.append("router: no encoder here => whole ladder")
    plan = RoutePlan(
        policy_version=policy.version,
        route=route,
        eligibility=assessed.eligibility,
        task=assessed.task,
        risk=assessed.risk,
        steps=tuple(steps),
        session_floor=session_floor,
        kind=kind,
        skipped_tiers=skipped,
    )
    reasons = (
        *assessed.eligibility.reasons,
        assessed.task.reason,
        assessed.risk.reason,
        *([kind.reason] if kind else []),
        f"route={route.name}",
        *step_reasons,
        plan.summary,
    )
    return replace(plan, reasons=reasons)


def plan_route(
    policy: Policy,
    facts: RequestFacts,
    predictor: TaskPredictor | None = None,
    *,
    session_escalated: bool = False,
    embedder: PromptEmbedder | None = None,
) -> RoutePlan:
    """``embedder``: the gateway's sentence encoder, for question kinds and start routers
    (without one a request has no kind and a routed ladder is climbed whole; the plan says so)."""
    assessed = assess_request(
        policy, facts, predictor, session_escalated=session_escalated, embedder=embedder
    )
    return plan_assessed(
        policy,
        assessed,
        facts.text,
        embedder=embedder,
        session_floor=facts.session_floor_tier,
        tool_tiers=facts.tool_tiers,
    )
