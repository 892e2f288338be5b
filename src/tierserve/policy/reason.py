"""A step's reason code as typed evidence, rendered to text only at the edge.

The kernel (:mod:`tierserve.policy.ladder`) records *why* a step ended as it did — the
confidence against its bar, each failed check, the fields under their threshold — as values,
and :meth:`Reason.render` prints them, e.g. ``conf=0.42<0.60 => escalate medium``. The
decision log and the review queue keep less of the caller's text than the response does, so
they render the same evidence under a :class:`Disclosure` that names a caller schema's fields
by digests and drops a failed check's detail; nothing edits the printed text afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tierserve.validate import ValidationResult

__all__ = [
    "Agreement",
    "Cause",
    "ConfidenceCheck",
    "Disclosure",
    "Evidence",
    "FieldCheck",
    "Reason",
    "ReviewMarks",
    "TierFailed",
    "ValidatorCheck",
]

_LISTED = 4
"""Fields named in a reason code; more are counted (the step record has them all)."""


def _same(path: str) -> str:
    return path


@dataclass(frozen=True, slots=True)
class Disclosure:
    """How much of the caller's text a rendering may show."""

    field_name: Callable[[str], str] = _same
    """How a field path is printed (a digest, where the field names are the caller's)."""
    failed_detail: bool = True
    """Whether a failed check's detail is printed: it can quote the answer, and the answer
    the prompt."""


FULL = Disclosure()


def _listed(items: list[str]) -> str:
    more = f",+{len(items) - _LISTED}" if len(items) > _LISTED else ""
    return ",".join(items[:_LISTED]) + more


def pair(value: float, threshold: float) -> tuple[str, str]:
    """Format both numbers so that their printed order matches their real order."""
    for digits in (2, 4, 6):
        shown = f"{value:.{digits}f}", f"{threshold:.{digits}f}"
        if shown[0] != shown[1] or value == threshold:
            return shown
    return f"{value!r}", f"{threshold!r}"


@dataclass(frozen=True, slots=True)
class ConfidenceCheck:
    """The answer's confidence, against the step's bar when it has one."""

    value: float
    bar: float | None = None

    @property
    def passed(self) -> bool:
        return self.bar is None or self.value >= self.bar

    def render(self, _: Disclosure) -> str:
        if self.bar is None:
            return f"conf={self.value:.2f}"
        value, bar = pair(self.value, self.bar)
        return f"conf={value}{'>=' if self.passed else '<'}{bar}"


@dataclass(frozen=True, slots=True)
class ValidatorCheck:
    result: ValidationResult

    def render(self, disclosure: Disclosure) -> str:
        result = self.result
        if not result.passed and not disclosure.failed_detail:
            return f"{result.name}=fail"
        return result.code


def _readings(readings: tuple[tuple[str, float], ...], disclosure: Disclosure) -> str:
    return _listed([f"{disclosure.field_name(path)}={value:.2f}" for path, value in readings])


@dataclass(frozen=True, slots=True)
class FieldCheck:
    """The step's field thresholds (one, or one per kind of value) and the gated fields under
    theirs, each as (path, confidence, threshold); none: all cleared them."""

    bars: tuple[float, ...]
    low: tuple[tuple[str, float, float], ...] = ()

    def render(self, disclosure: Disclosure) -> str:
        if len(self.bars) == 1:
            bar = f"{self.bars[0]:.2f}"
            shown = tuple((path, value) for path, value, _ in self.low)
            return f"fields<{bar}({_readings(shown, disclosure)})" if self.low else f"fields>={bar}"
        if not self.low:
            return "fields>=gates"
        named = disclosure.field_name
        return (
            "fields<gates("
            + _listed([f"{named(path)}={value:.2f}<{bar:.2f}" for path, value, bar in self.low])
            + ")"
        )


@dataclass(frozen=True, slots=True)
class Agreement:
    """A second opinion on the fields the step before doubted."""

    disputed: tuple[str, ...]
    agreed: tuple[str, ...]

    def render(self, disclosure: Disclosure) -> str:
        state = "fail" if self.disputed else "ok"
        paths = self.disputed or tuple(sorted(self.agreed))
        return f"agree={state}({_listed([disclosure.field_name(p) for p in paths])})"


@dataclass(frozen=True, slots=True)
class ReviewMarks:
    """Fields of an accepted answer under their review threshold: marked for a person."""

    marked: tuple[tuple[str, float], ...]

    def render(self, disclosure: Disclosure) -> str:
        return f"review({_readings(self.marked, disclosure)})"


@dataclass(frozen=True, slots=True)
class TierFailed:
    """The tier gave no answer: ``code`` is e.g. ``timeout>300s`` or ``error=RuntimeError``."""

    code: str

    def render(self, _: Disclosure) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class Cause:
    """A terminal step's cause: the ladder's own action, or the review a route requires."""

    text: str

    def render(self, _: Disclosure) -> str:
        return self.text


Evidence = (
    ConfidenceCheck | ValidatorCheck | FieldCheck | Agreement | ReviewMarks | TierFailed | Cause
)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a step ended as it did (``evidence``) and what the ladder did next (``then``:
    ``accept small``, ``escalate medium``, ``human_review``, ...)."""

    evidence: tuple[Evidence, ...]
    then: str
    last_step: bool = False
    """The step was the ladder's last, so ``then`` is what the route does when it runs out."""

    def render(self, disclosure: Disclosure = FULL) -> str:
        why = ",".join(item.render(disclosure) for item in self.evidence)
        return f"{why}{', last step' if self.last_step else ''} => {self.then}"
