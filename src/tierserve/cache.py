"""The exact-match response cache: a repeated request gets the answer the ladder accepted before.

The key covers everything that could change the answer: the policy version, the tenant (an
answer never crosses tenants), the route and its ladder's tiers (a session pinned to a stronger
tier gets its own entries), the schema, and the request normalized (whitespace in message text
collapsed; sampling parameters, stop strings and the response format as sent). Only accepted
answers are stored: a human-review or safe-failure outcome is decided again next time.

Each gateway replica keeps its own cache in memory (``cachetools.TTLCache``: a TTL and a size
bound, least recently used evicted first).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

__all__ = ["CachedAnswer", "ResponseCache", "cache_key"]

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    text: str
    finish_reason: str
    tier: str
    request_id: str
    """The request whose answer this is."""
    confidence: float
    models: dict[str, str]


def cache_key(
    *,
    policy_version: str,
    tenant: str,
    route: str,
    tiers: Sequence[str],
    schema: str | None,
    model: str,
    messages: Sequence[tuple[str, str]],
    sampling: dict[str, Any],
) -> str:
    canonical = {
        "policy_version": policy_version,
        "tenant": tenant,
        "route": route,
        "tiers": list(tiers),
        "schema": schema,
        "model": model,
        "messages": [[role, _SPACES.sub(" ", text).strip()] for role, text in messages],
        "sampling": sampling,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Not thread-safe: one per gateway replica, used from its event loop."""

    def __init__(
        self, *, ttl_s: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: TTLCache[str, CachedAnswer] = TTLCache(max_entries, ttl_s, timer=clock)

    def get(self, key: str) -> CachedAnswer | None:
        return self._entries.get(key)

    def put(self, key: str, answer: CachedAnswer) -> None:
        self._entries[key] = answer

    def __len__(self) -> int:
        return len(self._entries)
