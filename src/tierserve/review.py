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

from tierserve.observe.database import keep_newest, review_queue

__all__ = ["DatabaseReviewQueue", "JsonlReviewQueue", "ReviewQueue"]


class ReviewQueue(Protocol):
    def submit(self, item: dict[str, Any]) -> str:
        """Store ``item`` durably and return its review id."""
        ...


class JsonlReviewQueue:
    """Append-only JSONL; each record is flushed and fsync'd before ``submit`` returns. The file
    is bounded: past ``max_bytes`` it rotates to ``<path>.1`` (older ones shift up, at most
    ``keep_files`` kept), so a flood of reviews cannot fill the disk."""

    def __init__(self, path: Path, *, max_bytes: int = 64 << 20, keep_files: int = 4) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._keep_files = keep_files
        self._lock = threading.Lock()

    def _rotated(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def _rotate(self) -> None:
        self._rotated(self._keep_files).unlink(missing_ok=True)
        for index in range(self._keep_files - 1, 0, -1):
            if self._rotated(index).exists():
                self._rotated(index).rename(self._rotated(index + 1))
        self.path.rename(self._rotated(1))

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def submit(self, item: dict[str, Any]) -> str:
        review_id = f"review-{uuid.uuid4().hex[:16]}"
        line = json.dumps({"review_id": review_id, "queued_at": time.time(), **item}) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            size = self.path.stat().st_size if self.path.exists() else 0
            if size and size + len(line.encode()) > self._max_bytes:
                self._rotate()
            elif size and not self._ends_with_newline():
                line = "\n" + line  # a crash cut the last line short: start a fresh one
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        return review_id

    def read(self) -> list[dict[str, Any]]:
        """Every kept item, oldest first. A line cut short by a crash mid-write is skipped."""
        items = []
        files = [self._rotated(i) for i in range(self._keep_files, 0, -1)] + [self.path]
        for path in files:
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return items


class DatabaseReviewQueue:
    """The queue in the decision log's database: shared by every gateway replica and pod.
    Bounded as the file queue is: past ``max_items`` the oldest items are dropped, so a flood
    of reviews cannot fill the database."""

    def __init__(self, engine: Engine, *, max_items: int = 100_000) -> None:
        self._engine = engine
        self._max_items = max_items

    def submit(self, item: dict[str, Any]) -> str:
        review_id = f"review-{uuid.uuid4().hex[:16]}"
        with self._engine.begin() as connection:
            connection.execute(
                insert(review_queue).values(
                    review_id=review_id, queued_at=time.time(), item=json.dumps(item)
                )
            )
            keep_newest(connection, review_queue, self._max_items)
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
