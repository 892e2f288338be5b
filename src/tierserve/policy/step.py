"""One ladder step, one type: from the runner to the response, the decision log and replay.

A :class:`Step` carries the step's contract (tier, threshold, validators, decoding), its
verdict (outcome, reason code, failure kind, failed validators) and what was measured (tokens,
latency, confidence signals, cost). Validator results travel as structured
:class:`~tierserve.validate.ValidationResult` objects, never as strings to parse back.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

from tierserve.policy.reason import Disclosure, Reason
from tierserve.signals.fields import FieldReading
from tierserve.validate import ValidationResult

__all__ = ["FailureKind", "Outcome", "Step", "doubted_fields"]


class Outcome(StrEnum):
    ACCEPT = "accept"
    ESCALATE = "escalate"
    HUMAN_REVIEW = "human_review"
    SAFE_FAILURE = "safe_failure"
    DENIED = "denied"
    """A request refused before any tier ran (403, 429): recorded, never answered."""
    CLIENT_CLOSED = "client_closed"
    """A stream whose client left before its end: the tokens sent are recorded."""


class FailureKind(StrEnum):
    """Why a step's answer was not accepted (or why there was no answer)."""

    LOW_CONFIDENCE = "low_confidence"
    VALIDATOR = "validator"
    TIMEOUT = "timeout"
    ERROR = "error"
    CONTEXT_LENGTH = "context_length"
    """The prompt and max_tokens do not fit the tier's context window."""
    LOW_FIELD_CONFIDENCE = "low_field_confidence"
    """A gated field of a JSON answer is below the step's min_field_confidence."""
    DISAGREEMENT = "disagreement"
    """A second-opinion step gave other values for the fields the step before doubted."""


class Step(BaseModel):
    """What happened at one ladder step. A terminal action (human review, safe failure, the
    review a route requires) is a step without a tier."""

    model_config = ConfigDict(frozen=True)

    tier: str | None = Field(description="The tier called; None for a terminal action.")
    outcome: Outcome = Field(description="accept, escalate, human_review or safe_failure.")
    reason: str = Field(description="The reason code, e.g. 'conf=0.19<0.40 => escalate medium'.")
    why: SkipValidation[Reason | None] = Field(
        default=None,
        exclude=True,
        description="The verdict's evidence, which ``reason`` renders; kept in memory only, so "
        "that a record keeping less of the caller's text renders it again (see "
        ":meth:`disclosed`). Steps read back from the log have only ``reason``.",
    )
    failure: FailureKind | None = Field(
        default=None, description="Why the answer was not accepted; None when it was."
    )
    failed_validators: tuple[str, ...] = Field(
        default=(), description="Names of the validators the answer failed."
    )
    threshold: float | None = Field(default=None, description="The step's min_confidence.")
    confidence: float | None = Field(
        default=None, description="The answer's confidence (the stack's confidence signal)."
    )
    signals: dict[str, float] = Field(
        default_factory=dict,
        description="Confidence features of the answer (conf_q0, conf_q10, mean_logprob, ...).",
    )
    validations: tuple[ValidationResult, ...] = Field(
        default=(), description="Every validator run on the answer, with its detail."
    )
    fields: tuple[FieldReading, ...] = Field(
        default=(),
        description="Per field of a JSON answer: path, confidence from its value's tokens only, "
        "token count and a digest of the value (what replay re-judges under new thresholds).",
    )
    uncertain_fields: tuple[str, ...] = Field(
        default=(),
        description="Fields of this answer in doubt: below the step's min_field_confidence, "
        "named by a failed validator, or disputed by a second opinion.",
    )
    min_field_confidence: float | None = Field(
        default=None, description="The step's field threshold, when it has one."
    )
    second_opinion: bool = Field(
        default=False,
        description="Called to compare the fields the step before doubted (accept_on_agreement): "
        "an upstream call the agreement gate added.",
    )
    constrained: bool = False
    max_tokens: int | None = None
    validators: tuple[str, ...] = Field(default=(), description="Validators the step requires.")
    extra_context: bool = False
    model: str | None = Field(default=None, description="Model version that answered.")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    latency_s: float = 0.0
    validation_s: float = Field(
        default=0.0, description="Time spent scoring confidence and running the validators."
    )
    cost_usd: float = Field(default=0.0, description="From the tier's cost model.")
    error: str | None = Field(default=None, description="The tier's error, when it failed.")
    failure_code: str | None = Field(
        default=None,
        description="When the tier gave no answer: the code the verdict was reached on, e.g. "
        "'timeout>300s', 'error=RuntimeError' or 'context>2048'.",
    )

    def disclosed(self, disclosure: Disclosure) -> str:
        """The reason code as ``disclosure`` allows; a step read back from the log has only
        its rendered code, already as the log allowed it."""
        return self.why.render(disclosure) if self.why is not None else self.reason

    @property
    def escalation_reason(self) -> str | None:
        """The failure as a bounded metric label: low_confidence, validator_<name>, timeout,
        error or context_length; None for an accepted step (also one accepted as the last
        resort) or a terminal action."""
        if self.failure is None or self.tier is None or self.outcome is Outcome.ACCEPT:
            return None
        if self.failure is FailureKind.VALIDATOR:
            return f"validator_{self.failed_validators[0]}"
        return str(self.failure)


def doubted_fields(steps: Sequence[Step]) -> tuple[str, ...]:
    """The fields in doubt of the answer a request returned (or the reviewer's draft): those of
    its last step that called a tier."""
    called = [step for step in steps if step.tier is not None]
    return called[-1].uncertain_fields if called else ()
