"""Router metrics exactly as the field defines them (``docs/metrics.md``).

A router is evaluated through its operating points: one per threshold, each with the fraction
of requests sent to the strong (top) tier, the mean quality and the mean cost. Pure numpy.

* PGR = (q - q_weak) / (q_strong - q_weak).
* APGR (RouteLLM): the area under quality over the strong-call fraction (trapezoid rule, points
  sorted by strong fraction), normalised as (AUC - weak AUC) / (strong AUC - weak AUC), where
  the weak and strong AUCs integrate the constant weak / strong quality over the same points.
* CPT(x): the strong-call fraction at which the curve reaches PGR = x, by linear interpolation
  of strong fraction against quality (as RouteLLM's ``np.interp``).
* AIQ (RouterBench): the area under the non-decreasing upper convex hull of the (cost, quality)
  points, extended flat to the maximum cost, divided by the cost range.
* Cost to parity: the lowest cost among points whose quality reaches the strong-only quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OperatingPoint",
    "aiq",
    "apgr",
    "cost_to_parity",
    "cpt",
    "upper_hull",
]


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    threshold: float
    strong_fraction: float
    """Share of requests whose answer came from (or needed) the top tier, 0..1."""
    quality: float
    """Mean quality, 0..1."""
    cost: float
    """Mean cost per request."""


def _by_strong_fraction(points: Sequence[OperatingPoint]) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(points, key=lambda p: (p.strong_fraction, p.quality))
    x = np.array([p.strong_fraction for p in ordered])
    y = np.array([p.quality for p in ordered])
    return x, y


def apgr(points: Sequence[OperatingPoint], q_weak: float, q_strong: float) -> float:
    x, y = _by_strong_fraction(points)
    auc = float(np.trapezoid(y, x))
    weak_auc = float(np.trapezoid(np.full_like(x, q_weak), x))
    strong_auc = float(np.trapezoid(np.full_like(x, q_strong), x))
    return (auc - weak_auc) / (strong_auc - weak_auc)


def cpt(points: Sequence[OperatingPoint], q_weak: float, q_strong: float, target: float) -> float:
    """Strong-call fraction needed to recover ``target`` (e.g. 0.5) of the quality gap."""
    x, y = _by_strong_fraction(points)
    return float(np.interp(q_weak + target * (q_strong - q_weak), y, x))


def upper_hull(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing upper convex hull of (cost, quality) points, cheapest first."""
    ordered = sorted(set(points))
    hull: list[tuple[float, float]] = []
    for point in ordered:
        # Pop while the last turn is not a right turn (keeps the upper, concave chain).
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            cross = (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1)
            if cross >= 0:
                hull.pop()
            else:
                break
        hull.append(point)
    best = max(range(len(hull)), key=lambda i: (hull[i][1], -hull[i][0]))
    return hull[: best + 1]


def aiq(points: Sequence[OperatingPoint], cost_range: tuple[float, float] | None = None) -> float:
    """Average improvement in quality over the cost range (RouterBench)."""
    pairs = [(p.cost, p.quality) for p in points]
    low, high = cost_range or (min(c for c, _ in pairs), max(c for c, _ in pairs))
    if high <= low:
        return max(q for _, q in pairs)
    hull = upper_hull(pairs)
    hull_x = np.array([c for c, _ in hull])
    hull_y = np.array([q for _, q in hull])
    # np.interp holds the end values beyond the hull: flat to the maximum cost.
    x = np.array(sorted({low, high, *(c for c in hull_x if low < c < high)}))
    return float(np.trapezoid(np.interp(x, hull_x, hull_y), x) / (high - low))


def cost_to_parity(points: Sequence[OperatingPoint], q_strong: float) -> float | None:
    reaching = [p.cost for p in points if p.quality >= q_strong - 1e-12]
    return min(reaching) if reaching else None
