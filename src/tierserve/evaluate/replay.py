"""Counterfactual replay: the decision log (``tierserve log export``) under a candidate policy.

Each logged request keeps its tenant, PII kinds, task, risk, complexity and session floor; the
policy picks its route and eligible ladder, and the ladder is walked over what was recorded:

* a tier the request was already answered or tried on is judged again from its recorded
  confidence and validator results, against the candidate's threshold and validators;
* a tier never tried, a validator never run, or a changed contract (constrained decoding,
  extra context) would need a new generation: the request is ``unknown`` from there, and only
  the recorded part is counted.

Cost is the recorded cost of every tier the candidate walks. Expected quality, when per-tier
quality rates are given (from an outcome set of the same traffic), is the answering tier's
rate; a safe failure counts 0 and human review is reported apart. Cache hits and requests
pinned to a tier are not routed, and denied requests and streams the client left have no
finished answer, so they are counted but not replayed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import Field

from tierserve.evaluate.figures import Figures
from tierserve.model_names import split_model
from tierserve.observe.decision_record import DecisionRecord
from tierserve.policy.classify import TaskDecision
from tierserve.policy.compose import held_as_logged
from tierserve.policy.eligibility import logged_eligibility
from tierserve.policy.kinds import KindDecision, question_kind
from tierserve.policy.ladder import (
    Answer,
    Failure,
    Ladder,
    LadderWalk,
    NoAnswer,
    Observation,
)
from tierserve.policy.plan import Assessment, plan_assessed
from tierserve.policy.risk import RiskAssessment
from tierserve.policy.spec import LadderStepSpec, Policy, RiskLevel, TaskClass
from tierserve.policy.start_router import PromptEmbedder
from tierserve.policy.step import FailureKind, Outcome, Step
from tierserve.policy.versions import WrittenVersion

__all__ = [
    "LadderReplay",
    "OutcomesWritten",
    "RegeneratedAnswers",
    "ReplayReport",
    "ReplayScores",
    "Replayed",
    "candidate_ladder",
    "replay",
    "replay_ladder",
    "replay_one",
    "routed",
]


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
    calls_before: int = 0
    calls_after: int = 0
    latency_before: float = 0.0
    latency_after: float = 0.0


def _observation(spec: LadderStepSpec, seen: Step) -> Observation | None:
    """What ``spec`` would observe, read from the recorded step; None when the record cannot
    tell (another contract, or a validator the record never ran)."""
    new_context = spec.extra_context is not None and not seen.extra_context
    if spec.constrained != seen.constrained or new_context:
        return None
    if seen.failure_code is not None and seen.failure in _NO_ANSWER:
        return Failure(seen.failure, seen.failure_code)
    ran = {v.name: v for v in seen.validations}
    if seen.confidence is None or any(name not in ran for name in spec.validators):
        return None
    not_json = any(v.name == "schema" and not v.passed for v in seen.validations)
    if spec.judges_fields and not seen.fields and not not_json:
        return None  # a record without field signals cannot be judged per field
    return Answer(seen.confidence, tuple(ran[name] for name in spec.validators), seen.fields)


_NO_ANSWER = (FailureKind.TIMEOUT, FailureKind.ERROR, FailureKind.CONTEXT_LENGTH)


@dataclass(frozen=True, slots=True)
class LadderReplay:
    answered: str
    """The answering tier or outcome; 'unknown' when a new generation would be needed."""
    reasons: tuple[str, ...]
    """The kernel's reason code at each step walked, then why the walk ended."""
    cost: float
    calls: int = 0
    """Tiers called on the walk: the upstream calls (a second opinion's included)."""
    uncertain_fields: tuple[str, ...] = ()
    """The answer's (or the reviewer's draft's) fields still in doubt at the last step."""
    latency_s: float = 0.0
    """Engine time of the steps walked, one after the other."""


def replay_ladder(ladder: Ladder, recorded: Sequence[Step]) -> LadderReplay:
    """Walks ``ladder`` through the kernel over the recorded steps, as serving walked it."""
    by_tier = {s.tier: s for s in recorded if s.tier is not None}
    cost, calls, latency = 0.0, 0, 0.0
    walk = LadderWalk(ladder)

    def reasons(*then: str) -> tuple[str, ...]:
        """The kernel's reason code at each step walked, then why the walk ended."""
        return (*(verdict.reason for verdict in walk.verdicts), *then)

    while (move := walk.next_step) is not None:
        spec = ladder.steps[move.index]
        seen = by_tier.get(str(spec.tier))
        if seen is None:
            why = f"{spec.tier} was never tried: needs a generation"
            return LadderReplay("unknown", reasons(why), cost, calls, latency_s=latency)
        observation = _observation(spec, seen)
        if observation is None:
            why = f"{spec.tier}: contract, validators or field signals differ from the record"
            return LadderReplay("unknown", reasons(why), cost, calls, latency_s=latency)
        cost, calls, latency = cost + seen.cost_usd, calls + 1, latency + seen.latency_s
        walk.observe(observation)
    end = walk.end
    if isinstance(end, NoAnswer):
        return LadderReplay("unavailable", reasons(), cost, calls, latency_s=latency)
    answered = str(end.outcome)
    if end.outcome is Outcome.ACCEPT and end.answer is not None:
        answered = str(ladder.steps[end.answer].tier)
    uncertain = walk.verdicts[-1].uncertain_fields if walk.verdicts else ()
    note = (end.note.reason,) if end.note is not None else ()
    return LadderReplay(answered, reasons(*note), cost, calls, uncertain, latency)


def _assessed(
    policy: Policy, record: DecisionRecord, embedder: PromptEmbedder | None
) -> Assessment:
    """The logged request as the planner read it: its tenant, personal data, task, risk and
    complexity as logged; its question kind decided again when the log kept the prompt and an
    ``embedder`` is given, else as logged."""
    task = TaskClass(record.task)
    kind = question_kind(policy.question_kinds, task, embedder, record.prompt)
    if (kind is None or kind.kind is None) and record.prompt is None:
        kind = KindDecision(record.kind, record.kind_probability, f"kind={record.kind}(logged)")
    return Assessment(
        logged_eligibility(policy, record.tenant, tuple(record.pii)),
        TaskDecision(
            task,
            record.task_source or "fallback",
            record.task_probability,
            f"task={record.task}(logged)",
        ),
        RiskAssessment(RiskLevel(record.risk), record.complex_input, ()),
        kind,
    )


def candidate_ladder(
    policy: Policy, record: DecisionRecord, embedder: PromptEmbedder | None = None
) -> tuple[str, Ladder]:
    """The route and eligible ladder ``policy`` gives the logged request, planned as serving
    plans (:func:`~tierserve.policy.plan.plan_assessed`). A route's start router is applied
    when the log kept the prompt and an ``embedder`` is given; without the prompt the whole
    ladder is walked."""
    plan = plan_assessed(
        policy,
        _assessed(policy, record, embedder),
        record.prompt,
        embedder=embedder,
        session_floor=record.session_floor,
    )
    ladder = Ladder(
        steps=held_as_logged(plan.steps, plan.route.schema_name, record.output_schema),
        on_exhausted=plan.route.on_exhausted,
        review_accepted=plan.route.review_required,
    )
    return plan.route.name, ladder


def replay_one(
    policy: Policy,
    record: DecisionRecord,
    regenerated: Sequence[Step] = (),
    embedder: PromptEmbedder | None = None,
) -> Replayed:
    """``regenerated``: steps asked again on tiers the record never tried."""
    route, ladder = candidate_ladder(policy, record, embedder)
    tried = {s.tier for s in record.steps}
    walked = replay_ladder(
        ladder, [*record.steps, *(s for s in regenerated if s.tier not in tried)]
    )
    called = [s for s in record.steps if s.tier]
    return Replayed(
        record.request_id,
        record.route,
        route,
        record.answer_source,
        walked.answered,
        record.cost_usd,
        walked.cost,
        "; ".join(walked.reasons),
        len(called),
        walked.calls,
        sum(s.latency_s for s in called),
        walked.latency_s,
    )


def _not_routed(record: DecisionRecord) -> str | None:
    if record.cache == "hit":
        return "cache_hit"
    if record.outcome in (Outcome.DENIED, Outcome.CLIENT_CLOSED):
        return str(record.outcome)  # refused before routing, or left mid-answer
    if split_model(record.model_requested)[1] is not None:
        return "pinned_tier"
    return None


def routed(record: DecisionRecord) -> bool:
    """Whether the policy routed ``record`` (a replay walks only those)."""
    return _not_routed(record) is None


class ReplayScores(Figures):
    """Both policies' answers checked against a task set's labels, where a label exists."""

    labelled_requests: int
    quality_before: float | None
    quality_after: float | None


class RegeneratedAnswers(Figures):
    answers: int
    store: str
    not_replayable: dict[str, int] = Field(
        description="Requests that could not be asked again, by why."
    )


class OutcomesWritten(Figures):
    path: str
    rows: int


class ReplayReport(Figures):
    """The decision log under a candidate policy (``tierserve eval replay``). Costs, calls,
    latencies and expected quality are summed over the known requests only: an unknown one's
    cost under the candidate is not in the record."""

    candidate_policy: str
    records: int
    replayed: int
    skipped: dict[str, int] = Field(description="Records not replayed, by why.")
    route_changed: int
    answer_source_changed: int
    unknown: int
    transitions: dict[str, int] = Field(description="'<answered before>-><after>': requests.")
    totals_over_known_requests: int
    cost_before: float
    cost_after: float
    upstream_calls_before: int
    upstream_calls_after: int
    escalated_before: int
    escalated_after: int
    latency_s_before: float
    latency_s_after: float
    expected_quality_before: float | None = None
    expected_quality_after: float | None = None
    changed: list[Replayed] = Field(description="The first 50 whose answer source changed.")
    requests: list[Replayed]
    regenerated: RegeneratedAnswers | None = None
    scores: ReplayScores | None = None
    outcomes_written: OutcomesWritten | None = None
    policy_written: WrittenVersion | None = None


def replay(
    policy: Policy,
    records: Iterable[DecisionRecord],
    tier_quality: Mapping[str, float] | None = None,
    regenerated: Mapping[str, Sequence[Step]] | None = None,
    embedder: PromptEmbedder | None = None,
) -> ReplayReport:
    """``regenerated``: per request id, steps asked again on the live tiers; ``embedder``:
    for the candidate's start routers (see :func:`candidate_ladder`)."""
    replayed: list[Replayed] = []
    skipped: Counter[str] = Counter()
    for record in records:
        why = _not_routed(record)
        if why is not None:
            skipped[why] += 1
        else:
            extra = (regenerated or {}).get(record.request_id, ())
            replayed.append(replay_one(policy, record, extra, embedder))
    known = [r for r in replayed if r.answered_after != "unknown"]
    before, after = _expected_quality(known, tier_quality)
    return ReplayReport(
        candidate_policy=policy.version,
        records=len(replayed) + sum(skipped.values()),
        replayed=len(replayed),
        skipped=dict(skipped),
        route_changed=sum(r.route_before != r.route_after for r in replayed),
        answer_source_changed=sum(r.answered_before != r.answered_after for r in known),
        unknown=len(replayed) - len(known),
        transitions=dict(Counter(f"{r.answered_before}->{r.answered_after}" for r in replayed)),
        totals_over_known_requests=len(known),
        cost_before=sum(r.cost_before for r in known),
        cost_after=sum(r.cost_after for r in known),
        upstream_calls_before=sum(r.calls_before for r in known),
        upstream_calls_after=sum(r.calls_after for r in known),
        escalated_before=sum(r.calls_before > 1 for r in known),
        escalated_after=sum(r.calls_after > 1 for r in known),
        latency_s_before=sum(r.latency_before for r in known),
        latency_s_after=sum(r.latency_after for r in known),
        changed=[r for r in replayed if r.answered_before != r.answered_after][:50],
        requests=replayed,
        expected_quality_before=before,
        expected_quality_after=after,
    )


def _expected_quality(
    known: Sequence[Replayed], tier_quality: Mapping[str, float] | None
) -> tuple[float | None, float | None]:
    """The mean quality expected of the answers before and after, from each tier's quality
    rate (a safe failure is worth nothing; a request a person reviews is left out)."""
    if tier_quality is None:
        return None, None
    scored = [r for r in known if "human_review" not in (r.answered_before, r.answered_after)]
    if not scored:
        return None, None

    def quality(answered: str) -> float:
        return 0.0 if answered == "safe_failure" else tier_quality.get(answered, 0.0)

    before = sum(quality(r.answered_before) for r in scored) / len(scored)
    return before, sum(quality(r.answered_after) for r in scored) / len(scored)
