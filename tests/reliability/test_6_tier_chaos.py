"""Issue 19, test 3: the small tier's replica killed (SIGKILL) under load. Ray Serve restarts
it; meanwhile every request is answered or refused cleanly (503/504 with Retry-After), none
hangs, the regulated tenant never reaches the small tier, and the replica comes back and
answers. The dead replica's engine processes end with it (issue 33)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from tests.integration.replicas import replica_pids
from tests.reliability.conftest import Scale, write_figures
from tests.reliability.load import forbidden_tiers, open_loop, summary, unclean
from tests.stops.job import engines_of, still_running


def small_answers(base_url: str) -> bool:
    body = {
        "model": "tierserve/small",
        "messages": [{"role": "user", "content": "Say yes."}],
        "max_tokens": 4,
    }
    try:
        return httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60).is_success
    except httpx.HTTPError:
        return False


def test_a_killed_tier_replica_costs_no_hang_and_comes_back(
    base_url: str, scale: Scale, results: Path, capacity_rps: float
) -> None:
    (victim,) = replica_pids("tierserve", "tier-small")
    engines = engines_of(victim)

    async def run() -> list:  # type: ignore[type-arg]
        load = asyncio.create_task(open_loop(base_url, 0.7 * capacity_rps, scale.chaos_s))
        await asyncio.sleep(10)
        os.kill(victim, signal.SIGKILL)
        return await load

    killed_at = time.monotonic()
    replies = asyncio.run(run())
    back_after = None
    while time.monotonic() - killed_at < 600:
        pids = replica_pids("tierserve", "tier-small")
        if pids and victim not in pids and small_answers(base_url):
            back_after = time.monotonic() - killed_at
            break
        time.sleep(5)
    figures = {
        "seconds": scale.chaos_s,
        **summary(replies),
        "unclean": unclean(replies)[:20],
        "regulated_on_small": forbidden_tiers(replies),
        "replica_back_after_s": None if back_after is None else round(back_after),
        "engines_of_the_killed_replica": len(engines),
        "engines_left": still_running(engines),
        "circuit_open_steps": sum(
            1 for r in replies if "circuit_open" in r.headers.get("x-tierserve-reasons", "")
        ),
    }
    write_figures(results, "tier_chaos", figures)
    assert not figures["unclean"], figures["unclean"]
    assert not figures["regulated_on_small"]
    assert back_after is not None, "the small tier's replica did not come back"
    assert engines and not figures["engines_left"], figures
