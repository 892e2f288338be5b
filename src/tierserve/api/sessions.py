"""Where a session's floor (the strongest tier it escalated to) is kept between requests.

The gateway replica keeps floors in memory (:class:`InMemorySessions`); several gateway
replicas that must agree on a session need a shared store behind the same protocol.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

__all__ = ["InMemorySessions", "SessionStore"]


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
