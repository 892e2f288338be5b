"""The decision log: records survive, filters find them, retention bounds them, export is JSONL."""

import io
import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from tests.fakes import decision_record
from tierserve.cli import main
from tierserve.errors import InvalidRequestError
from tierserve.observe.decision_log import DecisionLog, LogQuery, parse_when
from tierserve.observe.decision_record import DecisionRecord


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the log lives: the embedded SQLite file, or a real PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "d.sqlite"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_appended_records_round_trip_in_order(target: Path | str) -> None:
    log = DecisionLog(target)
    records = [decision_record(f"r{i}", time=1_000_000.0 + i) for i in range(3)]
    for item in records:
        log.append(item)
    log.close()
    # A new connection (another process, after a restart) reads what was committed.
    assert list(DecisionLog(target).query()) == records


def test_the_file_is_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.sqlite")
    log.append(decision_record("r1"))
    with sqlite3.connect(tmp_path / "d.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert (tmp_path / "d.sqlite-wal").exists()


def _append_then_die(target: Path | str) -> None:
    log = DecisionLog(target)
    log.append(decision_record("before-kill"))
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no atexit


def test_a_record_survives_its_writer_being_killed(target: Path | str) -> None:
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_append_then_die, args=(target,))
    writer.start()
    writer.join(60)
    assert writer.exitcode == -9
    assert [r.request_id for r in DecisionLog(target).query()] == ["before-kill"]


def test_filters_by_tenant_route_outcome_reason_and_time(target: Path | str) -> None:
    log = DecisionLog(target)
    log.append(decision_record("a", tenant="northbank", route="faq-high-risk", time=100.0))
    log.append(
        decision_record("b", outcome="safe_failure", reason="semantic=fail(x) => safe_failure")
    )
    log.append(decision_record("c", time=2_000_000.0))

    def ids(**filters: object) -> list[str]:
        return [r.request_id for r in log.query(LogQuery(**filters))]  # type: ignore[arg-type]

    assert ids(tenant="northbank") == ["a"]
    assert ids(route="faq") == ["b", "c"]
    assert ids(outcome="safe_failure") == ["b"]
    assert ids(reason="semantic=fail") == ["b"]
    assert ids(reason="task=faq") == ["a", "b", "c"]  # plan reasons are searched too
    assert ids(since=1_500_000.0) == ["c"]
    assert ids(until=1_000_000.0) == ["a"]
    assert ids(limit=2) == ["a", "b"]
    assert ids(reason="fail(_)") == []  # LIKE wildcards are matched literally: no "fail(x)"


def test_retention_deletes_by_age_and_by_count(target: Path | str) -> None:
    log = DecisionLog(target, retention_days=1.0, max_records=2)
    for i, when in enumerate([0.0, 90_000.0, 100_000.0, 110_000.0]):
        log.append(decision_record(f"r{i}", time=when))
    deleted = log.prune(now=100_000.0)  # a day before is 13_600: r0 is too old
    assert deleted == 2  # r0 by age, then r1 to keep two records
    assert [r.request_id for r in log.query()] == ["r2", "r3"]


def test_export_writes_one_json_record_per_line(target: Path | str) -> None:
    log = DecisionLog(target)
    log.append(decision_record("a"))
    log.append(decision_record("b", tenant="northbank"))
    out = io.StringIO()
    assert log.export_jsonl(out, LogQuery(tenant="northbank")) == 1
    (line,) = out.getvalue().splitlines()
    assert DecisionRecord.model_validate(json.loads(line)).request_id == "b"


def test_cli_shows_and_exports(
    target: Path | str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = target
    log = DecisionLog(db)
    log.append(decision_record("a", reason="conf=0.10<0.40 => escalate medium"))
    log.append(decision_record("b"))
    assert main(["log", "show", "--db", str(db), "--reason", "escalate"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert len(shown) == 1 and " a tenant=public route=faq accept by small " in shown[0]
    out = tmp_path / "export.jsonl"
    assert main(["log", "export", "--db", str(db), "--out", str(out)]) == 0
    assert [json.loads(x)["request_id"] for x in out.read_text().splitlines()] == ["a", "b"]


def test_cli_names_a_missing_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "show", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no decision log at" in capsys.readouterr().err


def test_times_are_iso_or_ages() -> None:
    assert parse_when("1970-01-02T00:00") == 86400.0
    assert parse_when("1970-01-02T01:00+01:00") == 86400.0
    assert parse_when("90m", now=10_000.0) == 10_000.0 - 5400.0
    assert parse_when("2d", now=200_000.0) == 200_000.0 - 172_800.0
    with pytest.raises(InvalidRequestError, match="an age such as 90m"):
        parse_when("yesterday")
