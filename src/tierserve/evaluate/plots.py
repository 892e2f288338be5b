"""PNG plots of router reports: quality against strong-tier calls, and the cost-quality
frontier (the upper hull AIQ integrates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tierserve.evaluate.metrics import upper_hull

__all__ = ["plot_reports"]


def plot_reports(reports: dict[str, Any], out: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (calls, frontier) = plt.subplots(1, 2, figsize=(13, 5))
    any_report = next(iter(reports.values()))
    weak, strong = any_report["weak"], any_report["strong"]
    for name, item in reports.items():
        points = sorted(item["points"], key=lambda p: (p["strong_fraction"], p["quality"]))
        calls.plot(
            [100 * p["strong_fraction"] for p in points],
            [p["quality"] for p in points],
            marker=".",
            label=f"{name} (APGR {item['apgr']:.3f})",
        )
        hull = upper_hull([(p["cost"], p["quality"]) for p in item["points"]])
        frontier.scatter(
            [p["cost"] for p in item["points"]], [p["quality"] for p in item["points"]], s=6
        )
        frontier.plot(
            [c for c, _ in hull], [q for _, q in hull], label=f"{name} (AIQ {item['aiq']:.3f})"
        )
    for axis in (calls, frontier):
        axis.axhline(weak["quality"], color="grey", linestyle="--", label=f"{weak['tier']} only")
        axis.axhline(strong["quality"], color="red", linestyle="--", label=f"{strong['tier']} only")
        axis.legend(fontsize=8)
    calls.set(xlabel="strong-tier calls (%)", ylabel="quality", title=f"{title}: quality vs calls")
    frontier.set(xlabel="mean cost per request", ylabel="quality", title="cost-quality frontier")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
