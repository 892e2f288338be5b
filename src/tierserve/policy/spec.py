"""The routing policy file: tenants, task classes, risk rules and, per route, an ordered ladder.

A policy reads like prose (see ``serve_configs/policies/support.yaml``) and is validated on
load. Two rules keep ladders honest, and are checked here rather than trusted:

* a ladder never moves down: each step's tier is at least as strong as the one before;
* every escalation changes the contract: a stronger tier, constrained decoding, stricter
  validators, a larger token budget or more context, never "the same call again".
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tierserve.config import TierName, read_yaml, validate_model
from tierserve.errors import ConfigError
from tierserve.policy.file_form import FileForm
from tierserve.policy.keys import KEY_HASH_PATTERN
from tierserve.policy.kinds import QuestionKindsSpec
from tierserve.policy.start_router import (
    EncoderName,
    PromptCut,
    PromptModelFile,
    StartRouterSpec,
)
from tierserve.policy.task_model import TaskClassifierSpec
from tierserve.signals.confidence import GATE_SIGNALS
from tierserve.signals.fields import covers
from tierserve.signals.value_kinds import ValueKind
from tierserve.validate.checks import CHECKS
from tierserve.validate.rules import SemanticRule

__all__ = [
    "AuthSpec",
    "CacheSpec",
    "Compliance",
    "Importance",
    "LadderStepSpec",
    "Policy",
    "RateLimitSpec",
    "RiskLevel",
    "RiskRules",
    "RouteSpec",
    "SchemaSpec",
    "TaskClass",
    "TaskRule",
    "TenantSpec",
    "ValidatorName",
    "changes_contract",
    "load_policy",
    "mentions",
]


class TaskClass(StrEnum):
    FAQ = "faq"
    EXTRACTION = "extraction"
    DRAFTING = "drafting"
    TOOL_USE = "tool_use"
    POLICY_SENSITIVE = "policy_sensitive"
    UNKNOWN = "unknown"


class RiskLevel(StrEnum):
    LOW = "low"
    HIGH = "high"


Compliance = Literal["standard", "regulated"]
Importance = Literal["standard", "high"]


def _known_validator(name: str) -> str:
    if name not in CHECKS:
        raise ValueError(f"unknown validator {name!r}: use one of {sorted(CHECKS)}")
    return name


ValidatorName = Annotated[str, AfterValidator(_known_validator)]
"""A validator's name, as the validator registry (``validate.checks.CHECKS``) knows it: the
registry is the one list of names."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthSpec(_Spec):
    """Who may call: open (unknown callers are the default tenant) or keys required."""

    require_keys: bool = Field(
        default=False,
        description="Refuse a request without a known API key with 401 (invalid_api_key). "
        "Off, a caller without a known key is served as the default tenant: the embedded "
        "demo's open mode, stated at start-up and in GET /v1/models.",
    )
    protect_metrics: bool = Field(
        default=False,
        description="GET /metrics needs a known API key too (give Prometheus one as a bearer "
        "credential). Off: /metrics is open to whoever reaches the port.",
    )
    protect_explain: bool = Field(
        default=False,
        description="POST /v1/route/explain needs a known API key too. Off: it is open, and "
        "plans as the default tenant unless gateway.explain_uses_key is set.",
    )


class RateLimitSpec(_Spec):
    """A tenant's budget per sliding minute, shared by every gateway replica; a request
    over it gets a 429 with Retry-After."""

    requests_per_minute: int | None = Field(
        default=None, ge=1, description="Requests admitted per minute; None: no limit."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Prompt plus completion tokens per minute, over every step a request "
        "takes. Charged when the answer is known, so a request is refused once the minute's "
        "tokens are spent; None: no limit.",
    )


class TenantSpec(_Spec, FileForm):
    id: str = Field(min_length=1, description="Tenant id, used in reason codes and logs.")
    api_keys: list[str] = Field(
        default_factory=list,
        description="Bearer keys of this tenant in plain text (the embedded demo's); for real "
        "keys use api_key_hashes or api_keys_env.",
    )
    api_key_hashes: list[Annotated[str, Field(pattern=KEY_HASH_PATTERN)]] = Field(
        default_factory=list,
        description="Salted hashes of this tenant's keys, as `tierserve keys create` prints "
        "them (sha256$<salt>$<digest>); the keys themselves never reach the policy file.",
    )
    api_keys_env: str | None = Field(
        default=None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="An environment variable holding more keys of this tenant, comma-separated "
        "(e.g. from a Kubernetes Secret), read when the policy loads, so keys stay out of the "
        "policy file.",
    )
    compliance: Compliance = Field(
        default="standard", description="'regulated' tenants get their own tier restrictions."
    )
    allowed_tiers: list[TierName] | None = Field(
        default=None, description="Tiers this tenant may be served by; None means every tier."
    )
    importance: Importance = Field(
        default="standard", description="'high' raises the risk of every request by one level."
    )
    rate_limit: RateLimitSpec | None = Field(
        default=None, description="Request and token limits per minute; None: unlimited."
    )
    _keys_from_environment: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _keys_from_the_environment(self) -> TenantSpec:
        if self.api_keys_env is None:
            return self
        value = os.environ.get(self.api_keys_env)
        if value is None:
            raise ValueError(
                f"tenant {self.id!r} takes its API keys from ${self.api_keys_env}, which is not "
                "set; set it (comma-separated keys, empty for none) or drop api_keys_env"
            )
        extra = [key.strip() for key in value.split(",") if key.strip()]
        # Frozen model: the merged list is set once, here, while validating.
        object.__setattr__(self, "api_keys", [*self.api_keys, *extra])
        self._keys_from_environment = tuple(extra)
        return self

    def file_form(self, data: dict[str, Any]) -> dict[str, Any]:
        """The keys read from ``api_keys_env`` stay in the environment."""
        if not self._keys_from_environment:
            return data
        written = [k for k in self.api_keys if k not in self._keys_from_environment]
        data = {k: v for k, v in data.items() if k != "api_keys"}
        return data | {"api_keys": written} if written else data


class TaskRule(_Spec):
    """A keyword rule: if any phrase occurs in the user's text, the task is ``task``."""

    task: TaskClass
    any_of: list[str] = Field(min_length=1, description="Case-insensitive phrases.")


class RiskRules(_Spec):
    high_risk_phrases: list[str] = Field(
        default_factory=list,
        description="Phrases that make a request high risk: refunds, legal, incidents, HR...",
    )
    long_input_chars: int = Field(
        default=2000, ge=1, description="Inputs longer than this are high complexity."
    )
    many_entities: int = Field(
        default=8, ge=1, description="More named entities/numbers than this: high complexity."
    )
    escalated_sessions_are_high_risk: bool = Field(
        default=True, description="A session that escalated before is treated as high risk."
    )


def _import_model_schema(reference: str) -> dict[str, Any]:
    module_name, _, attribute = reference.partition(":")
    try:
        model = getattr(importlib.import_module(module_name), attribute)
        schema: dict[str, Any] = model.model_json_schema()
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(
            f"pydantic_model {reference!r} could not be loaded ({error}); write it as "
            "'package.module:ModelClass' naming an importable Pydantic model"
        ) from None
    return schema


class SchemaSpec(_Spec, FileForm):
    """A named output schema: its JSON schema, the rules its meaning must satisfy, and how the
    model is told about it. Give exactly one of ``json_schema``, ``json_schema_file`` or
    ``pydantic_model``; the file and the model are read when the policy loads."""

    json_schema: dict[str, Any] | None = Field(default=None, description="The schema, inline.")
    json_schema_file: str | None = Field(
        default=None, description="A JSON schema file, relative to the policy file."
    )
    pydantic_model: str | None = Field(
        default=None, description="'package.module:Model', a Pydantic model to take it from."
    )
    source: str = Field(default="inline", description="Where the schema came from (set on load).")
    rules: list[SemanticRule] = Field(
        default_factory=list, description="Semantic rules checked by the 'semantic' validator."
    )
    instructions: str = Field(
        default="Reply with only a JSON object that follows this JSON schema. Copy ids, names, "
        "dates and amounts from the text exactly; do not invent values.",
        description="System text sent with the schema to every step of a request using it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _read_references(cls, data: Any, info: ValidationInfo) -> Any:
        """Inline the file or model so the policy can travel to other processes as data."""
        if not isinstance(data, dict):
            return data
        given = [k for k in ("json_schema", "json_schema_file", "pydantic_model") if data.get(k)]
        if len(given) > 1:
            raise ValueError(
                f"give one of json_schema, json_schema_file or pydantic_model, not {given}"
            )
        if data.get("json_schema") is not None:
            return data
        data = dict(data)
        if data.get("pydantic_model"):
            reference = data.pop("pydantic_model")
            data["json_schema"], data["source"] = _import_model_schema(reference), reference
            data["read_from"] = {"pydantic_model": reference}
        elif data.get("json_schema_file"):
            base = (info.context or {}).get("base_dir")
            if base is None:
                raise ValueError("json_schema_file needs the policy's folder; use load_policy()")
            named = data.pop("json_schema_file")
            data["read_from"] = {"json_schema_file": named}
            path = Path(base) / named
            try:
                data["json_schema"], data["source"] = json.loads(path.read_text()), str(path)
            except (OSError, json.JSONDecodeError) as error:
                raise ValueError(f"json_schema_file {str(path)!r}: {error}") from None
        return data

    read_from: dict[Literal["json_schema_file", "pydantic_model"], str] = Field(
        default_factory=dict,
        description="Set on load: the json_schema_file or pydantic_model the schema was read "
        "from, which a policy file written from this policy names again.",
    )

    def file_form(self, data: dict[str, Any]) -> dict[str, Any]:
        """A schema read from a file or a model names it again."""
        data = {k: v for k, v in data.items() if k not in ("source", "read_from")}
        if self.read_from:
            data = {k: v for k, v in data.items() if k != "json_schema"} | self.read_from
        return data

    @model_validator(mode="after")
    def _valid_schema(self) -> SchemaSpec:
        if self.json_schema is None:
            raise ValueError("give one of json_schema, json_schema_file or pydantic_model")
        try:
            Draft202012Validator.check_schema(self.json_schema)
        except SchemaError as error:
            raise ValueError(f"not a valid JSON schema: {error.message}") from None
        return self

    @property
    def schema_(self) -> dict[str, Any]:
        assert self.json_schema is not None
        return self.json_schema


class LadderStepSpec(_Spec):
    """One step: a tier and the contract it is called under, or a terminal action."""

    tier: TierName | None = Field(default=None, description="Tier to call; None for an action.")
    action: Literal["generate", "human_review", "safe_failure"] = Field(
        default="generate", description="'generate' calls the tier; the others end the ladder."
    )
    min_confidence: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Accept only at or above this confidence."
    )
    constrained: bool = Field(
        default=False,
        description="Constrain decoding (Outlines) to the request's schema: the route's, or the "
        "one the caller selected.",
    )
    validators: list[ValidatorName] = Field(
        default_factory=list, description="Checks the answer must pass to be accepted."
    )
    max_tokens: int | None = Field(default=None, ge=1, description="Token budget of the step.")
    extra_context: str | None = Field(
        default=None, description="System text added at this step (instructions, policy excerpt)."
    )
    min_field_confidence: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="For JSON answers: accept only when every gated field's confidence (the "
        "probability of the least likely token of its value, not of the JSON around it) is at "
        "or above this. A field below it fails the step with a reason code naming the field; "
        "the final answer's metadata lists fields still under it (uncertain_fields).",
    )
    gated_fields: list[str] = Field(
        default_factory=list,
        description="Fields min_field_confidence applies to, as paths without array positions "
        "('total', 'customer.email', 'line_items[].amount'); a name covers the fields under it. "
        "Empty: every field.",
    )
    review_field_confidence: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="For JSON answers: per field (a path without array positions; a name covers "
        "the fields under it), a confidence under which an answer this step accepts is still "
        "returned, with the field listed in uncertain_fields for a person to check, instead of "
        "escalating. For fields a stronger tier gets no more right (a judgement such as a "
        "ticket's severity): `tierserve eval fields` chooses them.",
    )
    field_gates: dict[ValueKind, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="For JSON answers of any schema, a caller's own included: per kind of value "
        "(copied, number, date, code, judgement, text; read from the schema, see "
        "signals/value_kinds.py) the field threshold of every field of that kind. A field named "
        "in gated_fields takes min_field_confidence instead; one of a kind not listed falls back "
        "to min_field_confidence when gated_fields is empty.",
    )
    review_by_kind: dict[ValueKind, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict,
        description="As review_field_confidence, per kind of value: a field of an accepted "
        "answer under it is marked for review. A name in review_field_confidence overrides it.",
    )
    accept_on_agreement: bool = Field(
        default=False,
        description="When the step before escalated on uncertain fields, a second opinion: this "
        "answer is accepted on those fields if it gives the same values (its other fields still "
        "pass this step's own gates), and fails the step (escalate or review) if it does not.",
    )

    @model_validator(mode="after")
    def _shape(self) -> LadderStepSpec:
        if self.action == "generate" and self.tier is None:
            raise ValueError("a 'generate' step needs a tier")
        if self.action != "generate" and self.tier is not None:
            raise ValueError(f"a {self.action!r} step takes no tier (got {self.tier!r})")
        if self.gated_fields and self.min_field_confidence is None:
            raise ValueError(
                f"gated_fields {self.gated_fields} need min_field_confidence; set it, or drop "
                "gated_fields"
            )
        return self

    def review_threshold(self, pattern: str, kind: ValueKind | None = None) -> float:
        """The review threshold of the field at ``pattern`` holding a ``kind`` of value (0:
        none): the most specific name in review_field_confidence, else its kind's."""
        named = [name for name in self.review_field_confidence if covers(name, pattern)]
        if named:
            return self.review_field_confidence[max(named, key=len)]
        return self.review_by_kind.get(kind, 0.0) if kind is not None else 0.0

    def field_threshold(self, pattern: str, kind: ValueKind | None = None) -> float | None:
        """The field threshold of the field at ``pattern`` (a path without array positions)
        holding a ``kind`` of value; None when no field gate applies to it."""
        if any(covers(name, pattern) for name in self.gated_fields):
            return self.min_field_confidence
        if kind is not None and kind in self.field_gates:
            return self.field_gates[kind]
        return None if self.gated_fields else self.min_field_confidence

    @property
    def field_bars(self) -> tuple[float, ...]:
        """Every field threshold this step may apply, lowest first."""
        bars = {*self.field_gates.values()}
        if self.min_field_confidence is not None:
            bars.add(self.min_field_confidence)
        return tuple(sorted(bars))

    @property
    def judges_fields(self) -> bool:
        """Whether the step reads its answer's fields (a field gate or a review threshold)."""
        return bool(self.field_bars or self.review_field_confidence or self.review_by_kind)


class RouteSpec(_Spec):
    """Which requests the route takes, and the ladder it climbs."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )

    name: str = Field(min_length=1)
    tasks: list[TaskClass] = Field(min_length=1, description="Task classes this route serves.")
    risk: RiskLevel | None = Field(default=None, description="Only this risk level; None: any.")
    kinds: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only requests of these question kinds (the policy's `question_kinds` "
        "decides a request's kind); None: any kind, or none.",
    )
    schema_name: str | None = Field(
        default=None,
        alias="schema",
        description="Name of the output schema (in the policy's `schemas`) this route extracts, "
        "unless the caller selects another one.",
    )
    cacheable: bool = Field(default=False, description="Answers may be cached (when enabled).")
    ladder: list[LadderStepSpec] = Field(min_length=1)
    review_required: bool = Field(
        default=False,
        description="Accepted answers are drafts for a person: they are queued for human review "
        "(with the draft) and the caller is told so, e.g. policy-sensitive replies.",
    )
    on_exhausted: Literal["accept_last", "human_review", "safe_failure"] = Field(
        default="accept_last",
        description="What happens when the last generate step still fails its gate.",
    )
    start_router: StartRouterSpec | None = Field(
        default=None,
        description="Start the ladder at the cheapest tier a router trained on outcomes "
        "predicts suffices (the cascade behind it unchanged); None: at its first step.",
    )


class CacheSpec(_Spec):
    """The exact-match response cache: routes marked ``cacheable`` use it when it is enabled."""

    enabled: bool = Field(default=False, description="Serve repeated requests from the cache.")
    ttl_s: float = Field(default=3600.0, gt=0.0, description="Seconds an answer stays fresh.")
    max_entries: int = Field(
        default=10_000, ge=1, description="Entries kept per gateway replica (least recent go)."
    )
    allow_policy_sensitive: bool = Field(
        default=False,
        description="Let a route that serves policy-sensitive requests be cacheable: their "
        "answers depend on who asks and when, so this must be chosen explicitly.",
    )


PromptLogging = Literal["redact", "hash", "omit", "full"]


class Policy(_Spec, FileForm):
    version: str = Field(min_length=1, description="Reported in every response and log record.")
    tiers: list[TierName] = Field(
        min_length=1,
        description="The stack's tier names, weakest first: bound from the stack config when "
        "the policy loads (`load_policy(path, tiers)`); a policy file does not list them.",
    )
    confidence_signal: str = Field(
        default="conf_q10",
        description="The confidence signal the ladders' min_confidence thresholds were chosen "
        "on, and which the gateway therefore measures: conf_q<N> is exp of the N-th percentile "
        "of the answer's token log-probabilities (conf_q0: the least likely token). `tierserve "
        "eval calibrate` writes it.",
    )
    tenants: list[TenantSpec] = Field(min_length=1)
    default_tenant: str = Field(description="Tenant of requests without a known API key.")
    auth: AuthSpec = Field(
        default_factory=AuthSpec, description="Whether API keys are required, and where."
    )
    pii_allowed_tiers: list[TierName] | None = Field(
        default=None, description="When the input contains PII, only these tiers may serve it."
    )
    task_rules: list[TaskRule] = Field(default_factory=list)
    classifier_examples: str | None = Field(
        default=None,
        description="JSONL of labelled requests ({text, task}), relative to the policy file: "
        "what `tierserve eval task-classifier` trains `task_classifier` on (serving reads the "
        "trained weights, not these).",
    )
    task_classifier: TaskClassifierSpec | None = Field(
        default=None,
        description="The learned task classifier: a `file` of weights written by `tierserve "
        "eval task-classifier` (relative to the policy file, inlined on load). None: tasks "
        "come from hints and rules only.",
    )
    classifier_min_probability: float = Field(
        default=0.6, ge=0.0, le=1.0, description="Below this, the learned classifier says unknown."
    )
    calibrated_on: dict[TierName, str] = Field(
        default_factory=dict,
        description="Per tier, the model version (as /v1/models reports it, e.g. "
        "'Qwen/Qwen2.5-Coder-0.5B-Instruct@gptq-w4a16') this policy's thresholds were "
        "calibrated on. A tier served with another version is reported at start, by `policy "
        "check`, in /v1/models and by tierserve_tier_calibrated; empty: not recorded.",
    )
    require_calibrated_models: bool = Field(
        default=False,
        description="Refuse to start when a tier serves another model version than "
        "calibrated_on names (instead of a warning).",
    )
    question_kinds: QuestionKindsSpec | None = Field(
        default=None,
        description="A classifier giving requests of some task classes a question kind, which "
        "routes can match on (`kinds`); None: no kinds.",
    )
    risk: RiskRules = Field(default_factory=RiskRules)
    schemas: dict[str, SchemaSpec] = Field(
        default_factory=dict,
        description="Named output schemas; callers select one by name, routes name a default.",
    )
    routes: list[RouteSpec] = Field(min_length=1, description="First matching route wins.")
    forbidden_phrases: list[str] = Field(
        default_factory=list,
        description="The safety validator fails answers containing these (promises, admissions).",
    )
    safe_failure_message: str = Field(
        default="We could not produce a reliable answer to this request. Please try again later "
        "or contact support.",
    )
    human_review_message: str = Field(
        default="Your request needs a person's review; it has been queued and you will be "
        "contacted.",
    )
    cache: CacheSpec = Field(default_factory=CacheSpec)
    log_prompts: PromptLogging = Field(
        default="redact",
        description="How prompts enter the decision log: 'redact' replaces personal data by its "
        "kind ([email], [card], ...), 'hash' keeps only a SHA-256, 'omit' keeps nothing, 'full' "
        "keeps the text. Every record has the prompt's SHA-256 for matching.",
    )

    def file_form(self, data: dict[str, Any]) -> dict[str, Any]:
        """A policy file names no tiers: they are the stack's."""
        return {k: v for k, v in data.items() if k != "tiers"}

    @field_validator("confidence_signal")
    @classmethod
    def _gate_signal(cls, name: str) -> str:
        if name not in GATE_SIGNALS:
            raise ValueError(
                f"the gateway cannot gate on {name!r}; use one of {sorted(GATE_SIGNALS)}"
            )
        return name

    @property
    def confidence_quantile(self) -> float:
        """The quantile of token log-probabilities the gateway measures for this policy."""
        return GATE_SIGNALS[self.confidence_signal]

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        known = set(self.tiers)
        tenant_ids = [t.id for t in self.tenants]
        if self.default_tenant not in tenant_ids:
            raise ValueError(
                f"default_tenant {self.default_tenant!r} is not a tenant; use one of {tenant_ids}"
            )
        keys = [k for t in self.tenants for k in t.api_keys]
        if len(keys) != len(set(keys)):
            raise ValueError("an API key belongs to two tenants; give each key one tenant")
        for tenant in self.tenants:
            unknown = set(tenant.allowed_tiers or []) - known
            if unknown:
                raise ValueError(f"tenant {tenant.id!r} allows unknown tiers {sorted(unknown)}")
        covered = {task for route in self.routes if route.kinds is None for task in route.tasks}
        missing = sorted(task.value for task in set(TaskClass) - covered)
        if missing:
            raise ValueError(
                f"no route without `kinds` serves task classes {missing}; add them to a route "
                "(a request's kind may be unknown)"
            )
        self._check_kinds()
        self._check_task_classifier()
        self._one_encoder()
        unknown_tiers = sorted(set(self.calibrated_on) - known)
        if unknown_tiers:
            raise ValueError(
                f"calibrated_on names unknown tiers {unknown_tiers}; tiers are {self.tiers}"
            )
        for route in self.routes:
            if route.schema_name is not None and route.schema_name not in self.schemas:
                raise ValueError(
                    f"route {route.name!r} names schema {route.schema_name!r}, which is not in "
                    f"`schemas` ({sorted(self.schemas)}); add it there or fix the name"
                )
            self._check_ladder(route, known)
            routed = set(route.start_router.tiers) if route.start_router else set()
            if routed - known:
                raise ValueError(
                    f"route {route.name!r}: its start_router predicts unknown tiers "
                    f"{sorted(routed - known)}; tiers are {self.tiers}"
                )
            sensitive = TaskClass.POLICY_SENSITIVE in route.tasks
            if route.cacheable and sensitive and not self.cache.allow_policy_sensitive:
                raise ValueError(
                    f"route {route.name!r} is cacheable but serves policy_sensitive requests; "
                    "remove `cacheable` or set cache.allow_policy_sensitive: true"
                )
        return self

    def _prompt_models(self) -> list[tuple[str, PromptModelFile]]:
        models: list[tuple[str, PromptModelFile | None]] = [
            ("task_classifier", self.task_classifier),
            ("question_kinds", self.question_kinds),
        ] + [(f"route {r.name!r} start_router", r.start_router) for r in self.routes]
        return [(where, model) for where, model in models if model is not None]

    @property
    def prompt_cut(self) -> PromptCut:
        """What planning cuts from a prompt before embedding it once for all its models."""
        return PromptCut.of([model for _, model in self._prompt_models()])

    @property
    def encoder(self) -> EncoderName | None:
        """The sentence encoder its prompt models (task classifier, question kinds, start
        routers) read; None when it has none, and the gateway then loads no encoder."""
        models = self._prompt_models()
        return models[0][1].encoder if models else None

    def _one_encoder(self) -> None:
        names = {where: model.encoder for where, model in self._prompt_models()}
        if len(set(names.values())) > 1:
            raise ValueError(
                f"the policy's prompt models were trained on different encoders {names}; the "
                "gateway embeds a prompt once for all of them: retrain them on one "
                "(`tierserve eval calibrate --encoder`, `tierserve eval task-classifier "
                "--encoder`)"
            )

    def check_embedding(self, encoder: str, dimensions: int) -> None:
        """Refuse to serve this policy with an encoder its prompt models were not trained on
        (every request would fail, not the start)."""
        for where, model in self._prompt_models():
            wrong = sorted(model.weight_lengths() - {dimensions})
            if model.encoder != encoder or wrong:
                raise ConfigError(
                    f"policy {self.version!r}: {where} was trained on {model.encoder} "
                    f"(weights of length {sorted(model.weight_lengths())}) but the gateway's "
                    f"encoder is {encoder} with {dimensions} dimensions",
                    hint="retrain it on this encoder (`tierserve eval calibrate`, or `tierserve "
                    "eval task-classifier` for the task classifier)",
                )

    def _check_task_classifier(self) -> None:
        if self.classifier_examples is not None and self.task_classifier is None:
            raise ValueError(
                f"classifier_examples {self.classifier_examples!r} are training data; serving "
                "reads the trained weights. Run `tierserve eval task-classifier <this policy>` "
                "and set `task_classifier: {file: <the file it writes>}`"
            )
        if self.task_classifier is not None:
            unknown = sorted(set(self.task_classifier.classes) - {t.value for t in TaskClass})
            if unknown:
                raise ValueError(
                    f"task_classifier predicts unknown task classes {unknown}; use "
                    f"{[t.value for t in TaskClass]}"
                )

    def _check_kinds(self) -> None:
        kinds = self.question_kinds
        for route in self.routes:
            if route.kinds is None:
                continue
            if kinds is None:
                raise ValueError(
                    f"route {route.name!r} matches kinds {route.kinds} but the policy has no "
                    "`question_kinds`; add it or drop the route's `kinds`"
                )
            unknown = sorted(set(route.kinds) - set(kinds.kinds))
            if unknown:
                raise ValueError(
                    f"route {route.name!r} names kinds {unknown} that question_kinds does not "
                    f"predict ({sorted(kinds.kinds)})"
                )
            outside = sorted(set(route.tasks) - set(kinds.tasks))
            if outside:
                raise ValueError(
                    f"route {route.name!r} matches kinds on task classes {outside}, which "
                    f"question_kinds never gives a kind (its tasks: {kinds.tasks})"
                )
        if kinds is not None:
            unknown = sorted(set(kinds.tasks) - set(TaskClass))
            if unknown:
                raise ValueError(
                    f"question_kinds.tasks names unknown task classes {unknown}; use "
                    f"{[t.value for t in TaskClass]}"
                )

    def _check_ladder(self, route: RouteSpec, known: set[str]) -> None:
        previous: LadderStepSpec | None = None
        for index, step in enumerate(route.ladder):
            where = f"route {route.name!r} step {index}"
            if step.action != "generate":
                if index != len(route.ladder) - 1:
                    raise ValueError(f"{where}: {step.action!r} must be the last step")
                continue
            assert step.tier is not None
            if step.tier not in known:
                raise ValueError(f"{where}: unknown tier {step.tier!r}; tiers are {self.tiers}")
            if step.constrained and route.schema_name is None:
                raise ValueError(f"{where}: constrained decoding needs the route's `schema`")
            if previous is not None:
                assert previous.tier is not None
                if self.tiers.index(step.tier) < self.tiers.index(previous.tier):
                    raise ValueError(
                        f"{where}: moves down from {previous.tier!r} to {step.tier!r}; "
                        "a ladder only climbs"
                    )
                if not changes_contract(previous, step, self.tiers):
                    raise ValueError(
                        f"{where}: repeats the previous call on {step.tier!r}; escalate to a "
                        "stronger tier, add constrained decoding, stricter validators, a larger "
                        "max_tokens or extra_context"
                    )
            previous = step
        if previous is None:
            raise ValueError(f"route {route.name!r} has no generate step")

    def uncalibrated(self, served: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """The tiers ``served`` (tier -> model version) with another version than the one
        their thresholds were calibrated on: tier -> (calibrated on, served)."""
        return {
            tier: (calibrated, served[tier])
            for tier, calibrated in self.calibrated_on.items()
            if tier in served and served[tier] != calibrated
        }


def changes_contract(before: LadderStepSpec, after: LadderStepSpec, tiers: list[str]) -> bool:
    """True when ``after`` is a strictly different, never weaker, call than ``before``."""
    assert before.tier is not None and after.tier is not None
    stronger_tier = tiers.index(after.tier) > tiers.index(before.tier)
    more_constrained = after.constrained and not before.constrained
    stricter = set(after.validators) > set(before.validators)
    bigger_budget = (after.max_tokens or 0) > (before.max_tokens or 0)
    more_context = bool(after.extra_context) and after.extra_context != before.extra_context
    return stronger_tier or more_constrained or stricter or bigger_budget or more_context


def load_policy(path: str | Path, tiers: Sequence[str]) -> Policy:
    """Read and validate a policy file for a stack serving ``tiers`` (weakest first: the
    stack config owns them); errors name the bad value and the fix."""
    data = read_yaml(path)
    if isinstance(data, dict) and "tiers" in data:
        raise ConfigError(
            f"policy {path} lists tiers {data['tiers']}, but the stack config owns its tiers",
            hint="remove `tiers:` from the policy file; its ladders name the stack's tiers",
        )
    return validate_model(
        Policy,
        {**data, "tiers": list(tiers)} if isinstance(data, dict) else data,
        source=f"policy {path}",
        docs="tierserve/policy/spec.py",
        context={"base_dir": Path(path).parent},
    )


def mentions(text: str, phrase: str) -> bool:
    """Case-insensitive phrase match on word boundaries ('HR' is not in 'threatens').

    A phrase that starts or ends with a non-word character ('extract ') is matched as written
    on that side.
    """
    left = r"(?<!\w)" if phrase[:1].isalnum() else ""
    right = r"(?!\w)" if phrase[-1:].isalnum() else ""
    return re.search(left + re.escape(phrase) + right, text, re.IGNORECASE) is not None
