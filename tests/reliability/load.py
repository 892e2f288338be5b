"""Traffic for the reliability suite: a mixed workload sent open-loop (a fixed rate, whatever
the answers) or closed-loop, every reply kept with its status, headers and time."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.conftest import RATE_LIMITED_KEY

HANG_S = 240.0
"""A reply slower than this is a hang (the stack's deadline is 90 s)."""

ALLOWED = {200, 429, 503, 504, 408}
"""What a request may end in under load: answered, refused with Retry-After, or timed out
by its deadline."""


@dataclass(frozen=True)
class Sent:
    kind: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    kind: str
    status: int | None
    """None: no HTTP answer (connection failed, or no answer within HANG_S)."""
    error: str | None
    seconds: float
    headers: dict[str, str]
    text: str
    sent_at: float = 0.0
    """Unix time it was sent."""

    @property
    def retry_after(self) -> bool:
        return "retry-after" in self.headers

    @property
    def clean(self) -> bool:
        """Answered, or refused in one of the documented ways with when to retry."""
        if self.status == 200:  # a stream that was cut after its headers is not answered
            return self.kind != "stream" or "data: [DONE]" in self.text
        return self.status in ALLOWED and (self.status in (408, 504) or self.retry_after)


def question(index: int) -> str:
    topics = ["reset my password", "change my email", "update my card", "close my account"]
    return f"How do I {topics[index % len(topics)]}? (ticket {index})"


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def mixed(index: int) -> Sent:
    """Cheap-first cascade, a pinned small tier, a streamed answer, a regulated tenant (never
    the small tier) and a rate-limited tenant, in turn."""
    base = {"max_tokens": 16, "temperature": 0}
    text = question(index)
    kinds = [
        Sent("cascade", {"model": "tierserve", "messages": [{"role": "user", "content": text}]}),
        Sent(
            "small",
            {
                "model": "tierserve/small",
                "messages": [{"role": "user", "content": f"Say {index}."}],
            },
        ),
        Sent(
            "stream",
            {
                "model": "tierserve",
                "stream": True,
                "messages": [{"role": "user", "content": text}],
            },
        ),
        Sent(
            "regulated",
            {"model": "tierserve", "messages": [{"role": "user", "content": text}]},
            {"authorization": "Bearer sk-northbank-demo"},
        ),
        Sent(
            "rate_limited",
            {"model": "tierserve", "messages": [{"role": "user", "content": text}]},
            {"authorization": f"Bearer {RATE_LIMITED_KEY}"},
        ),
    ]
    sent = kinds[index % len(kinds)]
    return Sent(sent.kind, {**base, **sent.body}, sent.headers)


async def send(client: httpx.AsyncClient, sent: Sent) -> Reply:
    started, sent_at = time.monotonic(), time.time()
    try:
        async with asyncio.timeout(HANG_S):
            async with client.stream(
                "POST", "/v1/chat/completions", json=sent.body, headers=sent.headers
            ) as response:
                text = (await response.aread()).decode(errors="replace")
                status, headers = response.status_code, dict(response.headers)
    except (httpx.HTTPError, TimeoutError) as error:
        seconds = time.monotonic() - started
        text = str(error)[:200]
        return Reply(sent.kind, None, type(error).__name__, seconds, {}, text, sent_at)
    seconds = time.monotonic() - started
    return Reply(sent.kind, status, None, seconds, headers, text[-2000:], sent_at)


def client(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(HANG_S + 10),
        limits=httpx.Limits(max_connections=2000, max_keepalive_connections=100),
    )


async def open_loop(
    base_url: str,
    rate: float,
    seconds: float,
    workload: Callable[[int], Sent] = mixed,
    *,
    until: Callable[[int], bool] = lambda _: True,
) -> list[Reply]:
    """Requests sent at ``rate`` per second for ``seconds``, whatever the replies, and on
    until ``until(requests sent)`` holds."""
    async with client(base_url) as session:
        tasks = []
        started = time.monotonic()
        index = 0
        while time.monotonic() - started < seconds or not until(index):
            tasks.append(asyncio.create_task(send(session, workload(index))))
            index += 1
            await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))
        return list(await asyncio.gather(*tasks))


async def closed_loop(
    base_url: str, concurrency: int, seconds: float, workload: Callable[[int], Sent] = mixed
) -> tuple[list[Reply], float]:
    """``concurrency`` callers, each sending its next request when the last is answered;
    returns the replies and the seconds it ran."""
    replies: list[Reply] = []
    counter = iter(range(10**9))
    started = time.monotonic()

    async def caller(session: httpx.AsyncClient) -> None:
        while time.monotonic() - started < seconds:
            replies.append(await send(session, workload(next(counter))))

    async with client(base_url) as session:
        await asyncio.gather(*(caller(session) for _ in range(concurrency)))
    return replies, time.monotonic() - started


def summary(replies: list[Reply]) -> dict[str, Any]:
    statuses = Counter(str(r.status) if r.status else (r.error or "none") for r in replies)
    answered = sorted(r.seconds for r in replies if r.status == 200)

    def quantile(q: float) -> float | None:
        if not answered:
            return None
        return round(answered[min(len(answered) - 1, int(q * len(answered)))], 2)

    limited = statuses.get("429", 0)
    return {
        "sent": len(replies),
        "statuses": dict(sorted(statuses.items())),
        # Issue 33: answered / (sent - 429s); a rate limit refusing is the policy working.
        "availability": round(len(answered) / (len(replies) - limited), 4)
        if len(replies) > limited
        else None,
        "answered_p50_s": quantile(0.5),
        "answered_p99_s": quantile(0.99),
        "answered_max_s": round(answered[-1], 2) if answered else None,
        "answered_mean_s": round(statistics.fmean(answered), 2) if answered else None,
        "by_kind": {
            kind: dict(Counter(str(r.status) for r in replies if r.kind == kind))
            for kind in sorted({r.kind for r in replies})
        },
    }


def refused(replies: list[Reply], started: float) -> list[dict[str, Any]]:
    """Every request not answered, placed in time: sent this many seconds after ``started``
    (Unix time), ended after so many seconds, with the error code the body named."""
    return [
        {
            "kind": r.kind,
            "status": r.status or r.error,
            "code": error_code(r.text),
            "sent_at_s": round(r.sent_at - started, 1),
            "seconds": round(r.seconds, 1),
        }
        for r in replies
        if r.status != 200
    ]


def error_code(text: str) -> str | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def unclean(replies: list[Reply]) -> list[str]:
    return [
        f"{r.kind}: {r.status or r.error} after {r.seconds:.1f} s: {r.text[:200]}"
        for r in replies
        if not r.clean
    ]


def forbidden_tiers(replies: list[Reply]) -> list[str]:
    """Regulated-tenant replies that name the small tier among the tiers tried."""
    return [
        r.headers.get("x-tierserve-tiers-tried", "")
        for r in replies
        if r.kind == "regulated" and "small" in r.headers.get("x-tierserve-tiers-tried", "")
    ]


async def capacity(base_url: str, seconds: float) -> float:
    """Answered requests per second of the mixed workload with enough callers to fill every
    tier's slots (closed loop, 12 callers for 3 tiers of 4): the stack's capacity on this
    machine. Fewer callers measure latency, not capacity: the tiers batch what they hold."""
    replies, elapsed = await closed_loop(base_url, concurrency=12, seconds=seconds)
    answered = sum(1 for r in replies if r.status == 200 and r.kind != "rate_limited")
    return max(answered / elapsed, 0.05)
