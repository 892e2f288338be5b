"""The decision log: one durable record per request, queryable, exportable as JSONL.

Each record is its own transaction, committed before its response goes out, so it survives
the gateway being killed the moment the response is sent. The embedded default is a SQLite
file in WAL mode with ``synchronous=FULL`` (the commit returns after the write-ahead log is
fsync'd; gateway replicas on one host share it under SQLite's locking); a PostgreSQL URL gives
one log shared by every replica and pod (see :mod:`tierserve.observe.database`). ``tierserve
log`` filters by tenant, route and time on indexes. Records are only ever inserted; retention
deletes the oldest.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, Select, delete, insert, select

from tierserve.errors import InvalidRequestError
from tierserve.observe.database import decisions, keep_newest, open_engine, where
from tierserve.observe.decision_record import DecisionRecord

__all__ = ["DecisionLog", "LogQuery", "parse_when"]

_PRUNE_EVERY_S = 3600.0
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_when(text: str, now: float | None = None) -> float:
    """Unix time from an ISO-8601 time (UTC unless it says otherwise) or an age ('90m', '2d')."""
    age = _AGE.fullmatch(text.strip())
    if age:
        return (time.time() if now is None else now) - float(age[1]) * _UNIT_S[age[2]]
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequestError(
            f"cannot read the time {text!r}",
            hint="give an ISO time such as 2026-11-23T10:00 or an age such as 90m, 6h or 2d",
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


@dataclass(frozen=True, slots=True)
class LogQuery:
    """Filters of ``tierserve log``; None matches everything."""

    tenant: str | None = None
    route: str | None = None
    outcome: str | None = None
    reason: str | None = None
    """A substring of any plan or step reason code, e.g. 'validator' or 'escalate large'."""
    since: float | None = None
    until: float | None = None
    limit: int | None = None

    def statement(self) -> Select[str]:
        statement = select(decisions.c.record).order_by(decisions.c.seq)
        for column, value in (
            (decisions.c.tenant, self.tenant),
            (decisions.c.route, self.route),
            (decisions.c.outcome, self.outcome),
        ):
            if value is not None:
                statement = statement.where(column == value)
        if self.reason is not None:
            statement = statement.where(decisions.c.reasons.contains(self.reason, autoescape=True))
        if self.since is not None:
            statement = statement.where(decisions.c.time >= self.since)
        if self.until is not None:
            statement = statement.where(decisions.c.time < self.until)
        if self.limit is not None:
            statement = statement.limit(self.limit)
        return statement


class DecisionLog:
    """Append and query; safe to share between threads, processes and (on PostgreSQL) hosts."""

    def __init__(
        self,
        target: Path | str | Engine,
        *,
        retention_days: float | None = None,
        max_records: int | None = None,
    ) -> None:
        self._engine = target if isinstance(target, Engine) else open_engine(target)
        self.location = where(self._engine)
        self._retention_s = None if retention_days is None else retention_days * 86400.0
        self._max_records = max_records
        self._pruned_at = 0.0
        self._closed = False
        self.prune()

    def append(self, record: DecisionRecord) -> None:
        """Commits ``record``; returns once it is durable."""
        if self._closed:
            raise RuntimeError(f"the decision log at {self.location} is closed")
        reasons = "\n".join([*record.plan, *(step.reason for step in record.steps)])
        with self._engine.begin() as connection:
            connection.execute(
                insert(decisions).values(
                    request_id=record.request_id,
                    time=record.time,
                    tenant=record.tenant,
                    route=record.route,
                    outcome=str(record.outcome),
                    # A column to filter on, as the existing tables have it (the record keeps None).
                    answered_by=record.answer_source,
                    policy_version=record.policy_version,
                    reasons=reasons,
                    record=record.model_dump_json(),
                )
            )
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Deletes records past the retention age or the record bound; returns how many."""
        deleted = 0
        with self._engine.begin() as connection:
            if self._retention_s is not None:
                cutoff = (time.time() if now is None else now) - self._retention_s
                deleted += connection.execute(
                    delete(decisions).where(decisions.c.time < cutoff)
                ).rowcount
            if self._max_records is not None:
                deleted += keep_newest(connection, decisions, self._max_records)
        self._pruned_at = time.monotonic()
        return deleted

    def query(self, query: LogQuery | None = None) -> Iterator[DecisionRecord]:
        with self._engine.connect() as connection:
            rows = connection.execute((query or LogQuery()).statement()).scalars().all()
        for raw in rows:
            yield DecisionRecord.stored(raw)

    def export_jsonl(self, out: TextIO, query: LogQuery | None = None) -> int:
        """Writes the matching records as JSON lines (the offline evaluator's input)."""
        count = 0
        for record in self.query(query):
            out.write(record.model_dump_json() + "\n")
            count += 1
        return count

    def close(self) -> None:
        self._engine.dispose()
        self._closed = True
