"""Issue 19, test 4: the gateway replica killed (SIGKILL) under load, human-review traffic
included. No answered request is missing from the decision log, every record reads back
whole, and the review queue still reads, with an item for every answered review."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from tests.integration.replicas import replica_pids
from tests.reliability.conftest import Scale, write_figures
from tests.reliability.load import Sent, mixed, open_loop, summary, unclean
from tierserve.config import StackConfig
from tierserve.observe.decision_log import DecisionLog, LogQuery
from tierserve.review import JsonlReviewQueue


def with_reviews(index: int) -> Sent:
    if index % 3:
        return mixed(index)
    text = f"Draft a reply promising a refund for order {index}."
    body = {
        "model": "tierserve",
        "max_tokens": 16,
        "temperature": 0,
        "messages": [{"role": "user", "content": text}],
    }
    return Sent("review", body)


def test_a_killed_gateway_loses_no_record_and_no_review(
    base_url: str,
    scale: Scale,
    results: Path,
    capacity_rps: float,
    decision_log: DecisionLog,
    stack_config: StackConfig,
) -> None:
    (victim,) = replica_pids("tierserve", "gateway")
    started = time.time()

    async def run() -> list:  # type: ignore[type-arg]
        load = asyncio.create_task(
            open_loop(base_url, 0.7 * capacity_rps, scale.gateway_kill_s, with_reviews)
        )
        await asyncio.sleep(10)
        os.kill(victim, signal.SIGKILL)
        return await load

    replies = asyncio.run(run())
    time.sleep(2)
    records = {r.request_id: r for r in decision_log.query(LogQuery(since=started - 1))}
    answered = [r for r in replies if r.status == 200]
    missing = [r for r in answered if r.headers.get("x-tierserve-request-id") not in records]
    queue = JsonlReviewQueue(stack_config.gateway.review_queue_path)
    queued = {item["request_id"] for item in queue.read()}
    reviews = [r for r in answered if r.headers.get("x-tierserve-outcome") == "human_review"]
    figures = {
        "seconds": scale.gateway_kill_s,
        **summary(replies),
        "answered_missing_from_log": len(missing),
        "records_read_back": len(records),
        "reviews_answered": len(reviews),
        "reviews_missing_from_queue": sum(
            1 for r in reviews if r.headers.get("x-tierserve-request-id") not in queued
        ),
        "gateway_restarted": victim not in replica_pids("tierserve", "gateway"),
        "unclean": unclean(replies),
        # A stream whose answer had begun cannot be sent again; any other request can.
        "ended_without_an_answer": [
            r.kind for r in replies if r.status is None and r.kind != "stream"
        ],
    }
    write_figures(results, "gateway_kill", figures)
    assert figures["answered_missing_from_log"] == 0, figures
    assert figures["reviews_missing_from_queue"] == 0, figures
    assert figures["reviews_answered"] > 0 and figures["gateway_restarted"], figures
    # Issue 33: a request in flight in the killed replica is sent again, not answered 500.
    assert "500" not in figures["statuses"], figures
    assert not figures["ended_without_an_answer"], figures
