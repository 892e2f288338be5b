"""The human-review lane: requests the policy hands to a person, kept durably."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select

from tierserve.observe.database import review_queue

__all__ = ["DatabaseReviewQueue", "JsonlReviewQueue", "ReviewQueue"]


class ReviewQueue(Protocol):
    def submit(self, item: dict[str, Any]) -> str:
        """Store ``item`` durably and return its review id."""
        ...


class JsonlReviewQueue:
    """Append-only JSONL; each record is flushed and fsync'd before ``submit`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def submit(self, item: dict[str, Any]) -> str:
        review_id = f"review-{uuid.uuid4().hex[:16]}"
        line = json.dumps({"review_id": review_id, "queued_at": time.time(), **item})
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return review_id

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


class DatabaseReviewQueue:
    """The queue in the decision log's database: shared by every gateway replica and pod."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def submit(self, item: dict[str, Any]) -> str:
        review_id = f"review-{uuid.uuid4().hex[:16]}"
        with self._engine.begin() as connection:
            connection.execute(
                insert(review_queue).values(
                    review_id=review_id, queued_at=time.time(), item=json.dumps(item)
                )
            )
        return review_id

    def read(self) -> list[dict[str, Any]]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    review_queue.c.review_id, review_queue.c.queued_at, review_queue.c.item
                ).order_by(review_queue.c.seq)
            ).all()
        return [
            {"review_id": review_id, "queued_at": queued_at, **json.loads(item)}
            for review_id, queued_at, item in rows
        ]
