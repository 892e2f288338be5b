"""What the decision log and the review queue keep of a request, as the policy's
``log_prompts`` allows: the prompt (full, redacted, hashed or omitted), the end user by a
digest, and, where no prompt text is kept, no text of the caller's either (failed checks lose
their detail, a caller schema's field names become digests)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

from tierserve.observe.decision_record import DecisionRecord
from tierserve.pii import redact_pii
from tierserve.policy.reason import FULL, Disclosure
from tierserve.policy.spec import PromptLogging
from tierserve.policy.step import Step
from tierserve.validate import ValidationResult

__all__ = ["caller_disclosure", "end_user_digest", "kept_record", "kept_steps", "logged_prompt"]


def end_user_digest(tenant: str, end_user: str | None) -> str | None:
    if not end_user:
        return None
    return hashlib.sha256(f"{tenant}\n{end_user}".encode()).hexdigest()


def logged_prompt(text: str, mode: PromptLogging) -> tuple[str, str | None]:
    """(SHA-256 of the text, the text as ``mode`` allows it in the log)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    if mode == "full":
        return digest, text
    if mode == "redact":
        return digest, redact_pii(text)
    return digest, None


def _keeps_text(mode: PromptLogging) -> bool:
    """Whether the policy keeps prompt text ('full', 'redact') rather than none of it."""
    return mode in ("full", "redact")


def caller_disclosure(mode: PromptLogging) -> Disclosure:
    """How the reason codes in a response show a failed check: where the policy keeps no
    prompt text ('hash', 'omit'), without its detail, which can quote the answer. Response
    headers pass through proxies and their access logs; the answer's own steps, in the body,
    keep every detail for the caller."""
    if _keeps_text(mode):
        return FULL
    return Disclosure(failed_detail=False)


def _digest(key: str) -> str:
    return f"#{hashlib.sha256(key.encode()).hexdigest()[:8]}" if key else key


def _pseudonym(path: str) -> str:
    """``customer.name`` -> ``#1b2c3d4e.#5f6a7b8c``: each key by a digest, array positions
    kept, so the same field of two requests still compares equal."""
    out: list[str] = []
    key: list[str] = []
    in_position = False
    for char in path:
        if in_position:
            out.append(char)
            in_position = char != "]"
        elif char in ".[":
            out += [_digest("".join(key)), char]
            key, in_position = [], char == "["
        else:
            key.append(char)
    return "".join([*out, _digest("".join(key))])


def _private_step(step: Step, callers_schema: bool) -> Step:
    named = _pseudonym if callers_schema else (lambda path: path)
    # A failed check's detail can quote the answer, and the answer the prompt.
    disclosure = Disclosure(field_name=named, failed_detail=False)
    validations = tuple(
        ValidationResult(
            v.name, v.passed, v.detail if v.passed else "", tuple(named(f) for f in v.fields)
        )
        for v in step.validations
    )
    return step.model_copy(
        update={
            "reason": step.disclosed(disclosure),
            "why": None,
            "validations": validations,
            "fields": tuple(replace(r, path=named(r.path)) for r in step.fields),
            "uncertain_fields": tuple(named(f) for f in step.uncertain_fields),
        }
    )


def kept_steps(steps: Sequence[Step], mode: PromptLogging, callers_schema: bool) -> list[Step]:
    """``steps`` as the decision log and the review queue keep them. Where the policy keeps no
    prompt text ('hash', 'omit') they keep none of the caller's either: failed checks lose
    their detail, and the field names of a schema the caller sent are replaced by digests."""
    if _keeps_text(mode):
        return list(steps)
    return [_private_step(step, callers_schema) for step in steps]


def kept_record(
    record: DecisionRecord, mode: PromptLogging, callers_schema: bool
) -> DecisionRecord:
    """``record`` as the decision log keeps it (see :func:`kept_steps`); the caller's response
    is built from the record as it was."""
    if _keeps_text(mode) or not record.steps:
        return record
    return record.model_copy(update={"steps": kept_steps(record.steps, mode, callers_schema)})
