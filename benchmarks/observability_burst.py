"""A scripted burst of real traffic, the gateway's /metrics scraped while it runs, and the
dashboard's main panels drawn from those scrapes (PNG) next to the decision log's own counts.

    python benchmarks/observability_burst.py --url http://127.0.0.1:8000

Writes ``results/observability_burst.png`` and ``results/observability_burst.json``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import matplotlib
from prometheus_client.parser import text_string_to_metric_families

from tierserve.config import load_config
from tierserve.observe.decision_log import DecisionLog, LogQuery

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
STAGE_LATENCY = "tierserve_stage_latency_seconds"
SCRAPES = HERE / "results/observability_burst_scrapes.json"
FAQS = [
    "How do I reset my password?",
    "What is the capital of France?",
    "How many days are there in a leap year?",
    "What gas do plants absorb from the air for photosynthesis?",
    "Where can I download my invoices?",
    "What is 7 times 8? Answer with the number only.",
    "How do I change the email on my account?",
    "What is the largest planet in our solar system?",
    "Can I pay by bank transfer?",
    "What are your support hours?",
]
SENSITIVE = "A customer threatens legal action unless we refund them. Draft our reply."
BAD_BODIES: list[dict[str, Any]] = [
    {"model": "tierserve"},
    {"model": "tierserve", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10**6},
    {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]},
]


def burst() -> list[dict[str, Any]]:
    """Request bodies: every FAQ twice (the second from the cache), a policy-sensitive draft,
    an extraction, and bad requests."""

    def body(text: str, max_tokens: int) -> dict[str, Any]:
        messages = [{"role": "user", "content": text}]
        return {"model": "tierserve", "messages": messages, "max_tokens": max_tokens}

    bodies = [body(text, 32) for text in FAQS + FAQS]
    bodies.append(body(SENSITIVE, 64))
    email = (
        "Extract the ticket fields: Hi, customer C-20931 here. My order was damaged on "
        "2026-11-02 and I want a replacement."
    )
    bodies.append(body(email, 256))
    return bodies + BAD_BODIES


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def by_label(samples: dict[Any, float], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (n, ls), value in samples.items():
        if n == name:
            out[dict(ls).get(label, "")] += value
    return dict(out)


def difference(after: dict[Any, float], before: dict[Any, float]) -> dict[Any, float]:
    """What the burst added: counters and histogram buckets grow by it."""
    return {key: value - before.get(key, 0.0) for key, value in after.items()}


def quantile(samples: dict[Any, float], name: str, q: float, **labels: str) -> float | None:
    """histogram_quantile over the scraped buckets (linear inside a bucket, as Prometheus)."""
    buckets: dict[float, float] = defaultdict(float)
    wanted = set(labels.items())
    for (n, ls), value in samples.items():
        label_map = dict(ls)
        if n == f"{name}_bucket" and wanted <= set(ls):
            buckets[float(label_map["le"])] += value
    if not buckets or buckets[float("inf")] == 0:
        return None
    edges = sorted(buckets)
    rank = q * buckets[float("inf")]
    lower, below = 0.0, 0.0
    for edge in edges:
        if buckets[edge] >= rank:
            if edge == float("inf"):
                return lower
            inside = buckets[edge] - below
            return lower + (edge - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = edge, buckets[edge]
    return lower


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--config", type=Path, default=Path("serve_configs/local-cpu.yaml"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--replot", action="store_true", help="redraw from the saved scrapes")
    args = parser.parse_args()
    if args.replot:
        replot()
        return
    config = load_config(args.config)
    started = time.time()
    timeline: list[tuple[float, dict[Any, float]]] = []
    done = threading.Event()
    with httpx.Client(base_url=args.url, timeout=900) as client:
        baseline = scrape(client)

        def sample() -> None:
            while not done.wait(3.0):
                timeline.append((time.time() - started, scrape(client)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        statuses: Counter[int] = Counter()
        ids: list[str] = []

        def send(body: dict[str, Any]) -> None:
            response = client.post("/v1/chat/completions", json={**body, "temperature": 0})
            statuses[response.status_code] += 1
            if response.status_code == 200:
                ids.append(response.json()["id"])

        bodies = burst()
        # Each FAQ's first ask runs before its repeat, so the repeat can hit the cache.
        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(send, bodies[: len(FAQS)]))
            list(pool.map(send, bodies[len(FAQS) :]))
        done.set()
        sampler.join()
        final = scrape(client)
    timeline.append((time.time() - started, final))

    def grown(name: str, **labels: str) -> float:
        return total(final, name, **labels) - total(baseline, name, **labels)

    records = list(DecisionLog(config.observe.decision_log_path).query(LogQuery(since=started - 1)))
    logged = {
        "records": len(records),
        "by_outcome": dict(Counter(r.outcome for r in records)),
        "cache_hits": sum(r.cache == "hit" for r in records),
        "escalations": sum(s.escalation_reason is not None for r in records for s in r.steps),
        "cost_usd": round(sum(r.cost_usd for r in records), 9),
    }
    scraped = {
        "requests": grown("tierserve_requests_total"),
        "by_outcome": {
            o: grown("tierserve_requests_total", outcome=o)
            for o in ("accept", "human_review", "safe_failure")
        },
        "cache_hits": grown("tierserve_cache_lookups_total", result="hit"),
        "escalations": grown("tierserve_escalations_total"),
        "cost_usd": round(grown("tierserve_cost_usd_total"), 9),
        "errors": grown("tierserve_request_errors_total"),
    }
    burst_only = difference(final, baseline)
    summary = {
        "measured": time.strftime("%Y-%m-%d"),
        "sent": len(bodies),
        "http_statuses": dict(statuses),
        "answered_ids_in_log": sum(i in {r.request_id for r in records} for i in ids),
        "decision_log": logged,
        "scraped_metrics": scraped,
        "latency_p50_p95_s_by_stage": {
            stage: [quantile(burst_only, STAGE_LATENCY, q, stage=stage) for q in (0.5, 0.95)]
            for stage in ("policy", "inference", "validation", "total")
        },
    }
    (HERE / "results/observability_burst.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    scrapes = [(0.0, baseline), *timeline]
    SCRAPES.write_text(json.dumps([[t, _dump(samples)] for t, samples in scrapes]) + "\n")
    plot(timeline, baseline, final, HERE / "results/observability_burst.png")


def _dump(samples: dict[Any, float]) -> list[list[Any]]:
    return [[name, dict(labels), value] for (name, labels), value in samples.items()]


def _load(rows: list[list[Any]]) -> dict[Any, float]:
    return {(name, tuple(sorted(labels.items()))): value for name, labels, value in rows}


def replot() -> None:
    """Redraw the PNG from the scrapes a run saved, without sending traffic."""
    scrapes = [(t, _load(rows)) for t, rows in json.loads(SCRAPES.read_text())]
    baseline, timeline = scrapes[0][1], scrapes[1:]
    plot(timeline, baseline, timeline[-1][1], HERE / "results/observability_burst.png")


def plot(
    timeline: list[tuple[float, dict[Any, float]]],
    baseline: dict[Any, float],
    final: dict[Any, float],
    out: Path,
) -> None:
    figure, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    figure.suptitle("tierserve /metrics scraped during a scripted burst (embedded CPU stack)")

    ax = axes[0][0]
    before = by_label(baseline, "tierserve_requests_total", "route")
    after = by_label(final, "tierserve_requests_total", "route")
    routes = sorted(r for r, n in after.items() if n > before.get(r, 0.0))
    for route in routes:
        series = [
            total(s, "tierserve_requests_total", route=route)
            - total(baseline, "tierserve_requests_total", route=route)
            for _, s in timeline
        ]
        ax.plot([t for t, _ in timeline], series, label=route)
    ax.set(title="Requests answered by route (cumulative)", xlabel="seconds")
    ax.legend(fontsize=8)

    def bars(ax: Any, values: dict[str, float], title: str, unit: str = "") -> None:
        names = list(values)
        ax.barh(names, [values[n] for n in names])
        ax.set(title=title, xlabel=unit)

    def grown_by(name: str, label: str) -> dict[str, float]:
        after, before = by_label(final, name, label), by_label(baseline, name, label)
        return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}

    bars(axes[0][1], grown_by("tierserve_requests_total", "tier"), "Answered by (tier or outcome)")
    escalations: dict[str, float] = defaultdict(float)
    for (n, ls), value in final.items():
        if n == "tierserve_escalations_total":
            labels = dict(ls)
            key = f"{labels['from_tier']}→{labels['to_tier']} {labels['reason']}"
            escalations[key] += value - baseline.get((n, ls), 0.0)
    bars(axes[0][2], {k: v for k, v in escalations.items() if v}, "Escalations: path and reason")

    ax = axes[1][0]
    stages = ["policy", "validation", "inference", "total"]
    burst_only = difference(final, baseline)
    p50 = [quantile(burst_only, STAGE_LATENCY, 0.5, stage=s) or 0 for s in stages]
    p95 = [quantile(burst_only, STAGE_LATENCY, 0.95, stage=s) or 0 for s in stages]
    positions = range(len(stages))
    ax.bar([p - 0.2 for p in positions], p50, width=0.4, label="p50")
    ax.bar([p + 0.2 for p in positions], p95, width=0.4, label="p95")
    ax.set_xticks(list(positions), stages)
    ax.set_yscale("log")
    ax.set(title="Latency by stage (from histogram buckets)", ylabel="seconds")
    ax.legend(fontsize=8)

    cost_sum = grown_by("tierserve_request_cost_usd_sum", "route")
    cost_count = grown_by("tierserve_request_cost_usd_count", "route")
    per_request = {r: cost_sum.get(r, 0.0) / n for r, n in cost_count.items() if n}
    bars(axes[1][1], per_request, "Cost per request by route", "USD")
    axes[1][1].ticklabel_format(axis="x", style="sci", scilimits=(0, 0))

    requests = grown_by("tierserve_requests_total", "route")
    ran = {
        r: n
        - (
            total(final, "tierserve_requests_total", route=r, cache="hit")
            - total(baseline, "tierserve_requests_total", route=r, cache="hit")
        )
        for r, n in requests.items()
    }
    contained = grown_by("tierserve_contained_requests_total", "route")
    first_pass = grown_by("tierserve_first_pass_successes_total", "route")
    ax = axes[1][2]
    names = sorted(ran)
    positions = range(len(names))
    ax.bar(
        [p - 0.2 for p in positions],
        [first_pass.get(n, 0) / ran[n] if ran[n] else 0 for n in names],
        width=0.4,
        label="first-pass success",
    )
    ax.bar(
        [p + 0.2 for p in positions],
        [contained.get(n, 0) / ran[n] if ran[n] else 0 for n in names],
        width=0.4,
        label="containment",
    )
    ax.set_xticks(list(positions), names, rotation=20, fontsize=8)
    ax.set(title="First pass, containment (ladder runs)")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=90)


if __name__ == "__main__":
    main()
