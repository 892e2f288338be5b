"""Ladder composition: from a plan and what the caller asked for to the ladder a request climbs.

Pure functions, property-tested (``tests/unit/policy/test_compose_properties.py``):

* a pinned tier is never one the tenant may not use;
* a session floor never lowers a ladder, and only ever rises;
* composition never makes a ladder move down.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tierserve.errors import PermissionDeniedError
from tierserve.policy.ladder import Ladder
from tierserve.policy.plan import RoutePlan
from tierserve.policy.spec import LadderStepSpec, SchemaSpec, ValidatorName
from tierserve.validate import SemanticRule, ValidationContext

__all__ = [
    "CALLERS_SCHEMA_INSTRUCTIONS",
    "CALLER_SCHEMA_CHECKS",
    "OWN_SCHEMA_PREFIX",
    "SchemaChoice",
    "compose_ladder",
    "held_as_logged",
    "held_to_schema",
    "pinned_steps",
    "raised_floor",
    "task_hint",
    "with_checks",
]

_OWN_SCHEMA_INSTRUCTIONS = SchemaSpec.model_fields["instructions"].get_default()
CALLERS_SCHEMA_INSTRUCTIONS = (
    "Reply with only a JSON object that follows this JSON schema. Give each field in the form "
    "its description asks for: convert dates to YYYY-MM-DD, currencies to ISO 4217 codes (€ is "
    "EUR, £ is GBP, ¥ is JPY), amounts to plain numbers (1.234,50 is 1234.5) and names to first "
    "name then last name without titles. Copy ids exactly; never invent a value."
)
"""What a tier is told with a caller's own schema: its descriptions ask for normalised forms
(measured: the registered schemas' "copy exactly" made the 0.5B tiers keep "3 March 2026" and
"€" where a caller's schema asks for "2026-03-03" and "EUR")."""
_SCHEMA_CHECKS: tuple[ValidatorName, ...] = ("schema", "semantic")
CALLER_SCHEMA_CHECKS: tuple[ValidatorName, ...] = (
    *_SCHEMA_CHECKS,
    "dates",
    "emails",
    "currencies",
    "source_numbers",
    "copied",
)
"""A caller's own schema has no semantic rules: the format checks stand in for them on every
step (a registered schema's route lists the checks it wants)."""


OWN_SCHEMA_PREFIX = "own:"
"""A caller's own schema is named by this and a digest of it (in responses and the log)."""


@dataclass(frozen=True, slots=True)
class SchemaChoice:
    """The output schema a request is held to: registered in the policy, or the caller's own."""

    name: str
    schema: dict[str, Any]
    rules: tuple[SemanticRule, ...] = field(default=())
    instructions: str = _OWN_SCHEMA_INSTRUCTIONS
    callers_own: bool = False
    """Sent in the request rather than registered: its difficulty is unknown to the policy."""

    @property
    def checks(self) -> tuple[ValidatorName, ...]:
        """The validators every step of a request held to this schema runs."""
        return CALLER_SCHEMA_CHECKS if self.callers_own else _SCHEMA_CHECKS

    @property
    def system_text(self) -> str:
        """What the model is told at every step; the schema is compact JSON."""
        return f"{self.instructions}\nJSON schema: {json.dumps(self.schema, separators=(',', ':'))}"


def task_hint(
    explicit: str | None, requested: SchemaChoice | None, offers_tools: bool = False
) -> str | None:
    """The caller's task hint; tools offered mean tool use, and an output schema asked for (a
    registered one by name, or the caller's own ``json_schema``) means extraction, whatever the
    wording: a schema request gets the extraction ladder with its field gates."""
    if explicit is not None:
        return explicit
    if offers_tools:
        return "tool_use"
    if requested is not None:
        return "extraction"
    return None


def pinned_steps(
    plan: RoutePlan,
    tier: str,
    *,
    structured: bool,
    constrained: bool | None,
    cascade_name: str,
    checks: Sequence[ValidatorName] = _SCHEMA_CHECKS,
) -> tuple[LadderStepSpec, ...]:
    """The one step of a request pinned to ``tier``, if the tenant may use that tier.

    Structured output on one tier is constrained unless the caller turns it off, and the
    answer's checks are reported (a pinned tier's answer is returned either way)."""
    allowed = plan.eligibility.allowed_tiers
    if tier not in allowed:
        raise PermissionDeniedError(
            f"tenant {plan.eligibility.tenant.id!r} may not use tier {tier!r} for this request",
            hint=f"use model {cascade_name!r} or an allowed tier: {list(allowed)}",
            param="model",
        )
    if not structured:
        return (LadderStepSpec(tier=tier),)
    return (
        LadderStepSpec(tier=tier, constrained=constrained is not False, validators=list(checks)),
    )


def held_to_schema(
    steps: Sequence[LadderStepSpec],
    route_has_schema: bool,
    checks: Sequence[ValidatorName] = _SCHEMA_CHECKS,
) -> tuple[LadderStepSpec, ...]:
    """Every step's answer is checked against the requested schema (``checks``). A route with a
    schema of its own decides where decoding is constrained; any other route constrains every
    step, the guarantee a response_format asks for."""
    held = with_checks(steps, checks)
    if route_has_schema:
        return held
    return tuple(
        step.model_copy(update={"constrained": True}) if step.action == "generate" else step
        for step in held
    )


def held_as_logged(
    steps: Sequence[LadderStepSpec], route_schema: str | None, logged_schema: str | None
) -> tuple[LadderStepSpec, ...]:
    """``steps`` held to the schema a logged request named (its record's ``output_schema``), as
    :func:`compose_ladder` held them: a caller's own gets the format checks, another registered
    schema the schema checks; the route's own schema, or none, leaves the steps as they are."""
    if logged_schema is None or logged_schema == route_schema:
        return tuple(steps)
    own = logged_schema.startswith(OWN_SCHEMA_PREFIX)
    return held_to_schema(
        steps, route_schema is not None, CALLER_SCHEMA_CHECKS if own else _SCHEMA_CHECKS
    )


def with_checks(
    steps: Sequence[LadderStepSpec], checks: Sequence[ValidatorName]
) -> tuple[LadderStepSpec, ...]:
    """Every generating step also runs ``checks`` (a tool call is checked on every tier)."""
    return tuple(
        step.model_copy(
            update={
                "validators": [*step.validators, *(c for c in checks if c not in step.validators)]
            }
        )
        if step.action == "generate"
        else step
        for step in steps
    )


def raised_floor(tiers: Sequence[str], floor: str | None, tried: Sequence[str]) -> str | None:
    """A session's floor after a request that tried ``tried``: a request that escalated lifts
    the floor to the tier it ended on; the floor never comes down."""
    if len(tried) < 2:
        return floor
    order = list(tiers)
    candidates = [tried[-1], *([floor] if floor is not None and floor in order else [])]
    return max(candidates, key=order.index)


def compose_ladder(
    plan: RoutePlan,
    *,
    pinned: str | None,
    requested: SchemaChoice | None,
    route_schema: SchemaChoice | None,
    constrained: bool | None,
    cascade_name: str,
    validation: ValidationContext,
) -> Ladder:
    """The ladder of one request: the plan's, pinned to one tier, or held to the caller's
    schema; every step checks tool calls when the request offers tools. ``validation`` is
    completed with the schema's JSON schema and rules."""
    schema = requested or route_schema
    if pinned is not None:
        steps = pinned_steps(
            plan,
            pinned,
            structured=schema is not None,
            constrained=constrained,
            cascade_name=cascade_name,
            checks=_SCHEMA_CHECKS if schema is None else schema.checks,
        )
    elif requested is not None:
        steps = held_to_schema(plan.steps, plan.route.schema_name is not None, requested.checks)
    else:
        steps = plan.steps
    if validation.tools is not None:
        steps = with_checks(steps, ("tool_args",))
    return Ladder(
        steps=steps,
        on_exhausted=plan.route.on_exhausted if pinned is None else "accept_last",
        review_accepted=plan.route.review_required and pinned is None,
        json_schema=None if schema is None else schema.schema,
        schema_name=None if schema is None else schema.name,
        callers_schema=schema is not None and schema.callers_own,
        instructions=None if schema is None else schema.system_text,
        validation=replace(
            validation,
            json_schema=None if schema is None else schema.schema,
            rules=() if schema is None else schema.rules,
            input_pii=plan.eligibility.pii,
        ),
    )
