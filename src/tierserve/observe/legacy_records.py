"""Decision records written in an older format are upgraded when read back
(``DecisionRecord.stored``), so a log kept across a change still replays.

Version 1 (before 2026-12-06) kept the plan's facts only in its reason codes; version 2 (before
2026-12-07) named a terminal outcome in ``answered_by`` where version 3 has None (the outcome
field says which).

Version 1 kept how the task was found and the question kind only in the plan's reason codes
(``task=faq(p=0.91)``, ``kind=math(p=0.97)``); this is the one place that reads them, and only
for such records. Version 2 records carry them as fields and are never parsed.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["RECORD_VERSION", "upgraded"]

RECORD_VERSION = 3

_OUTCOMES = ("human_review", "safe_failure", "denied", "client_closed", "unknown")
"""What version 2 wrote in ``answered_by`` when no tier's answer was returned."""

_TASK = re.compile(
    r"^task=[a-z_-]+\((?P<how>hint\)|rule:|p=(?P<p>[0-9.]+)\)|classifier .* p=(?P<q>[0-9.]+)<)"
)
_KIND = re.compile(r"^kind=(?P<kind>[^(]+)\(p=(?P<p>[0-9.]+)\)$")
_SKIP = re.compile(r" => skip (?P<tiers>[^ ]+)$")


def _task_facts(reasons: list[str]) -> dict[str, Any]:
    for reason in reasons:
        match = _TASK.match(reason)
        if match is None:
            continue
        if match["how"] == "hint)":
            return {"task_source": "hint"}
        if match["how"] == "rule:":
            return {"task_source": "rule"}
        return {"task_source": "classifier", "task_probability": float(match["p"] or match["q"])}
    if any(reason.startswith("task=") for reason in reasons):
        return {"task_source": "fallback"}
    return {}


def _kind_facts(reasons: list[str]) -> dict[str, Any]:
    for reason in reasons:
        match = _KIND.match(reason)
        if match is not None:
            return {"kind": match["kind"], "kind_probability": float(match["p"])}
    return {}


def _skipped(reasons: list[str]) -> list[str]:
    tiers: list[str] = []
    for reason in reasons:
        match = _SKIP.search(reason)
        if match is not None:
            tiers += [t for t in match["tiers"].split(",") if t not in tiers]
    return tiers


def upgraded(data: object) -> object:
    """``data`` (a record as read) in the current format; current records pass unchanged."""
    if not isinstance(data, dict) or data.get("record_version") == RECORD_VERSION:
        return data
    if "record_version" not in data and "plan" in data:
        reasons = [str(r) for r in data.get("plan") or []]
        data = {
            **data,
            **_task_facts(reasons),
            **_kind_facts(reasons),
            "skipped_tiers": _skipped(reasons),
        }
    if data.get("answered_by") in _OUTCOMES:
        data = {**data, "answered_by": None}
    return {**data, "record_version": RECORD_VERSION}
