"""The decision log: one durable record per request, queryable, exportable as JSONL.

SQLite in WAL mode with ``synchronous=FULL``: each record is its own transaction, and the
commit returns only after the write-ahead log is fsync'd, so a record survives the gateway
being killed (or the machine losing power) the moment its response is sent. Chosen over an
fsync'd JSONL file because several gateway replicas append to the same file safely under
SQLite's locking, and ``tierserve log`` filters by tenant, route and time on indexes instead
of scanning. Records are only ever inserted; retention deletes the oldest.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tierserve.errors import InvalidRequestError
from tierserve.observe.record import DecisionRecord

__all__ = ["DecisionLog", "LogQuery", "parse_when"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    time REAL NOT NULL,
    tenant TEXT NOT NULL,
    route TEXT NOT NULL,
    outcome TEXT NOT NULL,
    answered_by TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    reasons TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (time);
CREATE INDEX IF NOT EXISTS decisions_tenant ON decisions (tenant, time);
CREATE INDEX IF NOT EXISTS decisions_route ON decisions (route, time);
"""
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

    def sql(self) -> tuple[str, list[object]]:
        where: list[str] = []
        args: list[object] = []
        for column, value in (
            ("tenant", self.tenant),
            ("route", self.route),
            ("outcome", self.outcome),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if self.reason is not None:
            where.append("instr(reasons, ?) > 0")
            args.append(self.reason)
        if self.since is not None:
            where.append("time >= ?")
            args.append(self.since)
        if self.until is not None:
            where.append("time < ?")
            args.append(self.until)
        text = "SELECT record FROM decisions"
        text += f" WHERE {' AND '.join(where)}" if where else ""
        text += " ORDER BY seq"
        if self.limit is not None:
            text += " LIMIT ?"
            args.append(self.limit)
        return text, args


class DecisionLog:
    """Append and query; safe to share between threads, and between processes on one host."""

    def __init__(
        self,
        path: Path,
        *,
        retention_days: float | None = None,
        max_records: int | None = None,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._retention_s = None if retention_days is None else retention_days * 86400.0
        self._max_records = max_records
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=30.0, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._pruned_at = 0.0
        self.prune()

    def append(self, record: DecisionRecord) -> None:
        """Commits ``record``; returns once it is on disk."""
        reasons = "\n".join([*record.plan, *(step.reason for step in record.steps)])
        with self._lock:
            self._db.execute(
                "INSERT INTO decisions (request_id, time, tenant, route, outcome, answered_by,"
                " policy_version, reasons, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.request_id,
                    record.time,
                    record.tenant,
                    record.route,
                    record.outcome,
                    record.answered_by,
                    record.policy_version,
                    reasons,
                    record.model_dump_json(),
                ),
            )
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY_S:
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Deletes records past the retention age or the record bound; returns how many."""
        deleted = 0
        with self._lock:
            if self._retention_s is not None:
                cutoff = (time.time() if now is None else now) - self._retention_s
                deleted += self._db.execute(
                    "DELETE FROM decisions WHERE time < ?", (cutoff,)
                ).rowcount
            if self._max_records is not None:
                deleted += self._db.execute(
                    "DELETE FROM decisions WHERE seq <= (SELECT seq FROM decisions"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (self._max_records,),
                ).rowcount
            self._pruned_at = time.monotonic()
        return deleted

    def query(self, query: LogQuery | None = None) -> Iterator[DecisionRecord]:
        text, args = (query or LogQuery()).sql()
        with self._lock:
            rows = self._db.execute(text, args).fetchall()
        for (raw,) in rows:
            yield DecisionRecord.model_validate_json(raw)

    def export_jsonl(self, out: TextIO, query: LogQuery | None = None) -> int:
        """Writes the matching records as JSON lines (the offline evaluator's input)."""
        count = 0
        for record in self.query(query):
            out.write(record.model_dump_json() + "\n")
            count += 1
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()
