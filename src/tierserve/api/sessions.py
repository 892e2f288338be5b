"""Where a session's floor (the strongest tier it escalated to) is kept between requests.

Without a database each gateway replica keeps floors in memory (:class:`InMemorySessions`);
with ``observe.database_url`` every replica reads and writes them in that database
(:class:`DatabaseSessions`), so a session keeps its floor whichever replica it reaches.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any, Protocol

from sqlalchemy import Engine, select

from tierserve.observe.database import session_floors

__all__ = ["DatabaseSessions", "InMemorySessions", "SessionStore"]


class SessionStore(Protocol):
    async def floor(self, session_id: str) -> str | None:
        """The session's floor tier, or None when it never escalated (or was forgotten)."""
        ...

    async def set_floor(self, session_id: str, tier: str) -> None: ...


class InMemorySessions:
    """The most recently active ``capacity`` sessions of this replica; older ones are forgotten
    (least recently used first)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._floors: OrderedDict[str, str] = OrderedDict()

    async def floor(self, session_id: str) -> str | None:
        return self._floors.get(session_id)

    async def set_floor(self, session_id: str, tier: str) -> None:
        self._floors[session_id] = tier
        self._floors.move_to_end(session_id)
        while len(self._floors) > self._capacity:
            self._floors.popitem(last=False)


class DatabaseSessions:
    """Session floors in the decision log's database, so every gateway replica (and pod) sees
    the same floor. Reads and writes run in a worker thread: the drivers block."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _floor(self, session_id: str) -> str | None:
        with self._engine.connect() as connection:
            found = connection.execute(
                select(session_floors.c.tier).where(session_floors.c.session_id == session_id)
            ).scalar_one_or_none()
        return found

    def _set_floor(self, session_id: str, tier: str) -> None:
        row = {"session_id": session_id, "tier": tier, "updated": time.time()}
        upsert = _upsert_for(self._engine.dialect.name)(session_floors).values(**row)
        with self._engine.begin() as connection:
            connection.execute(
                upsert.on_conflict_do_update(
                    index_elements=[session_floors.c.session_id],
                    set_={"tier": tier, "updated": row["updated"]},
                )
            )

    async def floor(self, session_id: str) -> str | None:
        return await asyncio.to_thread(self._floor, session_id)

    async def set_floor(self, session_id: str, tier: str) -> None:
        await asyncio.to_thread(self._set_floor, session_id, tier)


def _upsert_for(dialect: str) -> Any:
    from sqlalchemy.dialects import postgresql, sqlite

    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
