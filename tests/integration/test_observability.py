"""Metrics, the decision log and the response cache, checked against real traffic through the
real stack; then the gateway is killed with SIGKILL mid-traffic and no answered request loses
its record."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.replicas import replica_pids
from tierserve.config import StackConfig
from tierserve.observe import metrics as names
from tierserve.observe.decision_log import DecisionLog, LogQuery

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(http: httpx.Client) -> Samples:
    response = http.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much the samples named ``name`` whose labels include ``labels`` grew."""

    def total(samples: Samples) -> float:
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))

    return total(after) - total(before)


def faq(http: httpx.Client, text: str, *, model: str = "tierserve/small", **headers: str) -> Any:
    response = http.post(
        "/v1/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": text}],
            "max_tokens": 6,
            "temperature": 0,
            "metadata": {"task": "faq"},
        },
        # With a key: answers are cached per caller, and never for callers without one.
        headers={"Authorization": "Bearer sk-observability-test", **headers},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_metrics_log_and_cache_agree_with_the_traffic_sent(
    http: httpx.Client, stack_config: StackConfig
) -> None:
    before = scrape(http)
    questions = [
        "Name a primary colour.",
        "What is 2 plus 2?",
        "Name a day of the week.",
        "What colour is the sky?",
    ]
    answers = [faq(http, q) for q in questions]
    answers.append(faq(http, questions[0]))  # the same request again: from the cache
    answers.append(faq(http, questions[1], model="tierserve", **{"Cache-Control": "no-cache"}))
    for bad in ({"model": "tierserve"}, {"model": "gpt-x", "messages": []}):
        assert http.post("/v1/chat/completions", json=bad).status_code == 400
    unknown = http.post(
        "/v1/chat/completions",
        json={"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert unknown.status_code == 404
    after = scrape(http)

    metas = [answer["tierserve"] for answer in answers]
    assert [m["cache"] for m in metas] == ["miss"] * 4 + ["hit", "bypass"]
    assert metas[4]["cached_from"] == answers[0]["id"]
    assert answers[4]["choices"][0]["message"] == answers[0]["choices"][0]["message"]

    requests = Counter((m["route"], m["tier"], m["outcome"], m["cache"]) for m in metas)
    for (route, tier, outcome, cache), count in requests.items():
        labels = {"route": route, "tier": tier, "outcome": outcome, "cache": cache}
        assert grew(before, after, names.REQUESTS, **labels) == count, labels
    assert grew(before, after, names.REQUESTS) == len(answers)
    assert grew(before, after, names.CACHE_LOOKUPS, route="faq", result="hit") == 1
    assert grew(before, after, names.CACHE_LOOKUPS, route="faq", result="miss") == 4
    assert grew(before, after, names.REQUEST_ERRORS, error_type="invalid_request_error") == 3
    steps = [step for m in metas for step in m["steps"]]
    for tier in {step["tier"] for step in steps}:
        for kind in ("prompt", "completion"):
            sent = sum(s[f"{kind}_tokens"] for s in steps if s["tier"] == tier)
            assert grew(before, after, names.TOKENS, tier=tier, kind=kind) == sent
        cost = sum(s["cost_usd"] for s in steps if s["tier"] == tier)
        assert grew(before, after, names.COST, tier=tier) == pytest.approx(cost)
        inferences = sum(s["tier"] == tier for s in steps)
        latency_count = names.STAGE_LATENCY + "_count"
        assert grew(before, after, latency_count, stage="inference", tier=tier) == inferences
    escalations = [s for s in steps if s["tier"] and s["outcome"] != "accept"]
    assert grew(before, after, names.ESCALATIONS) == len(escalations)
    first_pass = sum(len(m["steps"]) == 1 and m["steps"][0]["outcome"] == "accept" for m in metas)
    assert grew(before, after, names.FIRST_PASS_SUCCESSES) == first_pass

    log = DecisionLog(stack_config.observe.decision_log_path)
    records = {r.request_id: r for r in log.query(LogQuery(since=time.time() - 3600))}
    for answer, meta in zip(answers, metas, strict=True):
        record = records[answer["id"]]
        assert (record.route, record.answered_by, record.outcome) == (
            meta["route"],
            meta["tier"],
            meta["outcome"],
        )
        assert record.cache == meta["cache"]
        assert [s.reason for s in record.steps] == meta["reasons"]
        assert record.cost_usd == pytest.approx(meta["cost_usd"])
    assert records[answers[4]["id"]].cached_from == answers[0]["id"]


def _gateway_pid() -> int:
    (pid,) = replica_pids("tierserve", "gateway")
    return pid


def test_sigkill_of_the_gateway_loses_no_answered_record(
    base_url: str, http: httpx.Client, stack_config: StackConfig
) -> None:
    started = time.time()
    before = scrape(http)
    answered: list[str] = []
    failed: list[str] = []
    in_flight = [0]
    answered_at_kill: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def send(worker: int) -> None:
        with httpx.Client(base_url=base_url, timeout=120) as session:
            for index in range(10_000):
                if stop.is_set():
                    return
                body = {
                    "model": "tierserve/small",
                    "messages": [{"role": "user", "content": f"Say {worker}-{index}."}],
                    "max_tokens": 4,
                    "temperature": 0,
                    "metadata": {"task": "faq"},
                }
                with lock:
                    in_flight[0] += 1
                try:
                    response = session.post("/v1/chat/completions", json=body)
                    ok = response.status_code == 200
                    outcome = response.json()["id"] if ok else f"{response.status_code}"
                except httpx.HTTPError as error:
                    ok, outcome = False, type(error).__name__
                with lock:
                    in_flight[0] -= 1
                    (answered if ok else failed).append(outcome)
                if not ok:
                    time.sleep(1)

    workers = [threading.Thread(target=send, args=(w,)) for w in range(3)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 300
    while len(answered) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    victim = _gateway_pid()
    with lock:
        answered_at_kill.append(len(answered))
        busy = in_flight[0]
    os.kill(victim, signal.SIGKILL)
    while len(answered) < answered_at_kill[0] + 6 and time.monotonic() < deadline:
        time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join(180)
    assert busy > 0, "the kill was meant to land while requests were in flight"
    assert len(answered) >= answered_at_kill[0] + 6, f"no recovery after the kill: {failed}"
    assert _gateway_pid() != victim

    log = DecisionLog(stack_config.observe.decision_log_path)
    logged = {r.request_id for r in log.query(LogQuery(since=started - 1))}
    missing = [request_id for request_id in answered if request_id not in logged]
    assert not missing, f"{len(missing)} answered requests have no record"

    # The killed process's samples stay in the multiprocess directory and are summed with its
    # successor's: every answered request is counted once, plus at most the records whose
    # metrics update the kill interrupted.
    counted = grew(before, scrape(http), names.REQUESTS)
    assert len(answered) <= counted <= len(logged)
