"""Where durable state lives: one SQLAlchemy engine over SQLite (the embedded default, a file
beside the gateway) or PostgreSQL (shared by every gateway replica and pod).

Tables: ``decisions`` (the decision log), ``session_floors`` (the strongest tier each session
escalated to) and ``review_queue`` (requests handed to a person). On SQLite the engine runs in
WAL mode with ``synchronous=FULL``; on PostgreSQL a commit is durable by default
(``synchronous_commit=on``). Either way a record's transaction commits before its response.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
)
from sqlalchemy.exc import DBAPIError

__all__ = [
    "METADATA",
    "decisions",
    "keep_newest",
    "open_engine",
    "review_queue",
    "session_floors",
    "where",
]

METADATA = MetaData()

decisions = Table(
    "decisions",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False, unique=True),
    Column("time", Float, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("route", String(128), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("answered_by", String(64), nullable=False),
    Column("policy_version", String(256), nullable=False),
    Column("reasons", Text, nullable=False),
    Column("record", Text, nullable=False),
    Index("decisions_time", "time"),
    Index("decisions_tenant", "tenant", "time"),
    Index("decisions_route", "route", "time"),
    sqlite_autoincrement=True,
)

session_floors = Table(
    "session_floors",
    METADATA,
    Column("session_id", String(256), primary_key=True),
    Column("tier", String(64), nullable=False),
    Column("updated", Float, nullable=False),
)

review_queue = Table(
    "review_queue",
    METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("review_id", String(64), nullable=False, unique=True),
    Column("queued_at", Float, nullable=False),
    Column("item", Text, nullable=False),
    sqlite_autoincrement=True,
)


def _sqlite_durability(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def open_engine(target: str | Path, *, pool_size: int = 5, max_overflow: int = 5) -> Engine:
    """An engine for a database URL (``postgresql+psycopg://user@host/db``; the password from
    libpq's PGPASSWORD or ~/.pgpass, not the URL), holding at most ``pool_size +
    max_overflow`` connections, or a SQLite file path; creates the tables."""
    if isinstance(target, Path) or "://" not in target:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            f"sqlite:///{path}", connect_args={"timeout": 30.0, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_durability)
    else:
        engine = create_engine(
            target, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow
        )
    for attempt in range(3):
        try:
            METADATA.create_all(engine)
            break
        except DBAPIError:
            # Another replica created the same tables between the check and the CREATE.
            if attempt == 2:
                raise
    return engine


def keep_newest(connection: Connection, table: Table, keep: int) -> int:
    """Deletes all but the ``keep`` newest rows of ``table`` (by its ``seq``); returns how many."""
    newest_dropped = (
        select(table.c.seq).order_by(table.c.seq.desc()).limit(1).offset(keep).scalar_subquery()
    )
    deleted: int = connection.execute(delete(table).where(table.c.seq <= newest_dropped)).rowcount
    return deleted


def where(engine: Engine) -> str:
    """The engine's database, as an operator would name it (no password)."""
    return engine.url.render_as_string(hide_password=True)
