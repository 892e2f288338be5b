"""Issue 19, test 2: a soak at the measured capacity. Requests sent = answered + refused (none
lost or hung); every answered request and every rate-limit refusal is in the decision log."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.reliability.conftest import Scale, write_figures
from tests.reliability.load import open_loop, summary, unclean
from tierserve.observe.decision_log import DecisionLog, LogQuery


def test_at_capacity_nothing_is_lost(
    base_url: str, scale: Scale, results: Path, capacity_rps: float, decision_log: DecisionLog
) -> None:
    started = time.time()
    replies = asyncio.run(open_loop(base_url, capacity_rps, scale.soak_s))
    time.sleep(2)
    records = list(decision_log.query(LogQuery(since=started - 1)))
    logged = {r.request_id for r in records}
    answered = [r for r in replies if r.status == 200]
    answered_ids = [r.headers.get("x-tierserve-request-id", "") for r in answered]
    rate_limited = [r for r in replies if r.status == 429]
    denials = [r for r in records if r.outcome == "denied" and r.plan[-1].startswith("rate_limit")]
    refused = [r for r in replies if r.status in (429, 503, 504, 408)]
    figures = {
        "rate_per_s": round(capacity_rps, 3),
        "seconds": scale.soak_s,
        **summary(replies),
        "answered": len(answered),
        "refused": len(refused),
        "records_logged": len(records),
        "answered_without_record": sum(1 for i in answered_ids if i not in logged),
        "rate_limit_denials_logged": len(denials),
        "unclean": unclean(replies)[:20],
    }
    write_figures(results, "soak", figures)
    assert len(replies) == len(answered) + len(refused), figures
    assert figures["answered_without_record"] == 0, figures
    assert len(denials) == len(rate_limited), figures
    assert not figures["unclean"], figures["unclean"]
