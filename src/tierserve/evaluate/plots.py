"""PNG plots of router reports: quality against strong-tier calls, the cost-quality frontier
(the upper hull AIQ integrates) and, for cascades, the threshold sweep (quality and cost as
every tier's threshold moves through the signal's quantiles)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tierserve.evaluate.figures import CascadeRouterReport, RouterReport
from tierserve.evaluate.metrics import upper_hull

__all__ = ["plot_reports"]


def plot_reports(reports: Mapping[str, RouterReport], out: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cascades = {
        n: r.threshold_sweep
        for n, r in reports.items()
        if isinstance(r, CascadeRouterReport) and r.threshold_sweep
    }
    rows = 2 if cascades else 1
    figure, axes = plt.subplots(rows, 2, figsize=(13, 5 * rows), squeeze=False)
    (calls, frontier), *_ = axes
    any_report = next(iter(reports.values()))
    weak, strong = any_report.weak, any_report.strong
    for name, item in reports.items():
        gap_recovered = "undefined" if item.apgr is None else round(item.apgr, 3)
        points = sorted(item.calls_curve, key=lambda p: (p.strong_fraction, p.quality))
        calls.plot(
            [100 * p.strong_fraction for p in points],
            [p.quality for p in points],
            marker=".",
            label=f"{name} (APGR {gap_recovered})",
        )
        hull = upper_hull([(p.cost, p.quality) for p in item.points])
        frontier.scatter([p.cost for p in item.points], [p.quality for p in item.points], s=6)
        aiq = "undefined" if item.aiq is None else f"{item.aiq:.3f}"
        frontier.plot([c for c, _ in hull], [q for _, q in hull], label=f"{name} (AIQ {aiq})")
    for axis in (calls, frontier):
        axis.axhline(weak.quality, color="grey", linestyle="--", label=f"{weak.tier} only")
        axis.axhline(strong.quality, color="red", linestyle="--", label=f"{strong.tier} only")
        axis.legend(fontsize=8)
    calls.set(xlabel="strong-tier calls (%)", ylabel="quality", title=f"{title}: quality vs calls")
    frontier.set(xlabel="mean cost per request", ylabel="quality", title="cost-quality frontier")
    if cascades:
        quality_axis, cost_axis = axes[1]
        for name, sweep in cascades.items():
            x = [100 * point.grid_position for point in sweep]
            quality_axis.plot(x, [point.quality for point in sweep], marker=".", label=name)
            cost_axis.plot(x, [point.cost for point in sweep], marker=".", label=name)
        quality_axis.axhline(strong.quality, color="red", linestyle="--")
        quality_axis.set(
            xlabel="threshold (percentile of the signal, every tier)",
            ylabel="quality",
            title="threshold sweep: quality",
        )
        cost_axis.set(
            xlabel="threshold (percentile of the signal, every tier)",
            ylabel="mean cost per request",
            title="threshold sweep: cost",
        )
        for axis in (quality_axis, cost_axis):
            axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
