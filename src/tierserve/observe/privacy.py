"""What the decision log and the review queue keep of a request, as the policy's
``log_prompts`` allows: the prompt (full, redacted, hashed or omitted), the end user by a
digest, and, where no prompt text is kept, no text of the caller's either (failed checks lose
their detail, a caller schema's field names become digests)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import replace

from tierserve.observe.decision_record import DecisionRecord
from tierserve.pii import redact_pii
from tierserve.policy.spec import PromptLogging
from tierserve.policy.step import Step
from tierserve.validate import ValidationResult

__all__ = ["end_user_digest", "kept_record", "kept_steps", "logged_prompt"]


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


_POSITION = re.compile(r"(\[\d+\])")
_GROUP = re.compile(r"\(([^()]*)\)")


def _pseudonym(path: str) -> str:
    """``customer.name`` -> ``#1b2c3d4e.#5f6a7b8c``: each key by a digest, array positions
    kept, so the same field of two requests still compares equal."""
    out = []
    for piece in _POSITION.split(path):
        if _POSITION.fullmatch(piece):
            out.append(piece)
            continue
        keys = piece.split(".")
        out.append(
            ".".join(f"#{hashlib.sha256(k.encode()).hexdigest()[:8]}" if k else k for k in keys)
        )
    return "".join(out)


def _private_step(step: Step, callers_schema: bool) -> Step:
    names = {
        path: _pseudonym(path) if callers_schema else path
        for path in (
            *(r.path for r in step.fields),
            *step.uncertain_fields,
            *(f for v in step.validations for f in v.fields),
        )
    }
    reason = step.reason
    validations = []
    for result in step.validations:
        # A failed check's detail can quote the answer, and the answer the prompt.
        kept = ValidationResult(
            result.name,
            result.passed,
            "" if not result.passed else result.detail,
            tuple(names[f] for f in result.fields),
        )
        reason = reason.replace(result.code, kept.code)
        validations.append(kept)

    def listed(group: re.Match[str]) -> str:
        items = []
        for item in group.group(1).split(","):
            path, equals, value = item.partition("=")
            items.append(f"{names.get(path, path)}{equals}{value}")
        return f"({','.join(items)})"

    return step.model_copy(
        update={
            "reason": _GROUP.sub(listed, reason) if callers_schema else reason,
            "validations": tuple(validations),
            "fields": tuple(replace(r, path=names[r.path]) for r in step.fields),
            "uncertain_fields": tuple(names[f] for f in step.uncertain_fields),
        }
    )


def kept_steps(steps: Sequence[Step], mode: PromptLogging, callers_schema: bool) -> list[Step]:
    """``steps`` as the decision log and the review queue keep them. Where the policy keeps no
    prompt text ('hash', 'omit') they keep none of the caller's either: failed checks lose
    their detail, and the field names of a schema the caller sent are replaced by digests."""
    if mode in ("full", "redact"):
        return list(steps)
    return [_private_step(step, callers_schema) for step in steps]


def kept_record(
    record: DecisionRecord, mode: PromptLogging, callers_schema: bool
) -> DecisionRecord:
    """``record`` as the decision log keeps it (see :func:`kept_steps`); the caller's response
    is built from the record as it was."""
    if mode in ("full", "redact") or not record.steps:
        return record
    return record.model_copy(update={"steps": kept_steps(record.steps, mode, callers_schema)})
