"""The serving report as one PNG: latency percentiles and throughput against concurrency per
target, and quality against cost per request on the labelled set."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = ["plot_report"]


def plot_report(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    closed: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for run in report["runs"]:
        if run["dataset"] == "random" and run["load"].startswith("c"):
            closed[run["target"]].append((int(run["load"][1:]), run["metrics"]))
    figure, axes = plt.subplots(2, 2, figsize=(13, 10))
    panels = [
        (axes[0][0], "ttft", "TTFT (ms): p50 solid, p99 dashed"),
        (axes[0][1], "e2el", "end-to-end latency (ms): p50 solid, p99 dashed"),
    ]
    concurrencies = sorted({c for ps in closed.values() for c, _ in ps})

    def concurrency_axis(axis: Any) -> None:
        axis.set(xscale="log", xlabel="concurrency")
        axis.set_xticks(concurrencies)
        axis.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.get_xaxis().set_minor_locator(matplotlib.ticker.NullLocator())

    for axis, metric, title in panels:
        for name, points in sorted(closed.items()):
            points.sort(key=lambda p: p[0])
            xs = [c for c, _ in points]
            (line,) = axis.plot(xs, [m[f"median_{metric}_ms"] for _, m in points], "o-", label=name)
            axis.plot(xs, [m[f"p99_{metric}_ms"] for _, m in points], "--", color=line.get_color())
        concurrency_axis(axis)
        axis.set_title(title)
        axis.legend()
    throughput = axes[1][0]
    for name, points in sorted(closed.items()):
        throughput.plot(
            [c for c, _ in points], [m["output_throughput"] for _, m in points], "o-", label=name
        )
    concurrency_axis(throughput)
    throughput.set_ylabel("output tokens/s")
    throughput.set_title("throughput")
    throughput.legend()
    quality = axes[1][1]
    for row in report["labelled"]:
        cost = row["decisions"].get("cost_per_request_usd")
        if cost is not None:
            quality.scatter([cost], [row["quality"]], s=60)
            quality.annotate(row["target"], (cost, row["quality"]), textcoords="offset points",
                             xytext=(6, 4))  # fmt: skip
    quality.set(xlabel="cost per request (USD, tiers' cost model)", ylabel="quality (labelled)")
    quality.set_title("quality vs cost on the labelled set")
    machine = report.get("machine", {})
    figure.suptitle(
        f"tierserve serving benchmark: {machine.get('cpu', '')} {machine.get('host', '')}"
    )
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
