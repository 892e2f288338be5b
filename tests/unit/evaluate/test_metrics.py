"""Router metrics on curves whose values are known by hand, and on the RouteLLM GSM8K data."""

import statistics
from pathlib import Path

import pytest

from tierserve.evaluate.importers import read_routellm_csv
from tierserve.evaluate.metrics import OperatingPoint, aiq, apgr, cost_to_parity, cpt, upper_hull
from tierserve.evaluate.routers import random_scores
from tierserve.evaluate.sweep import report, score_points

ROOT = Path(__file__).resolve().parents[3]
GSM8K = ROOT / "benchmarks/data/routellm/gsm8k_responses.csv"


def curve(*pairs: tuple[float, float]) -> list[OperatingPoint]:
    """(strong fraction, quality) pairs; cost equals the strong fraction."""
    return [OperatingPoint(0.0, f, q, f) for f, q in pairs]


def test_a_straight_line_from_weak_to_strong_recovers_half_the_gap() -> None:
    line = curve((0.0, 0.6), (0.5, 0.7), (1.0, 0.8))
    assert apgr(line, 0.6, 0.8) == pytest.approx(0.5)
    assert cpt(line, 0.6, 0.8, 0.5) == pytest.approx(0.5)
    assert cpt(line, 0.6, 0.8, 0.8) == pytest.approx(0.8)


def test_an_oracle_that_needs_a_fifth_of_strong_calls() -> None:
    oracle = curve((0.0, 0.6), (0.2, 0.8), (1.0, 0.8))
    # Area: 0.2 * 0.7 + 0.8 * 0.8 = 0.78; weak area 0.6, strong area 0.8 -> (0.78-0.6)/0.2.
    assert apgr(oracle, 0.6, 0.8) == pytest.approx(0.9)
    assert cpt(oracle, 0.6, 0.8, 0.5) == pytest.approx(0.1)
    assert cost_to_parity(oracle, 0.8) == pytest.approx(0.2)
    assert cost_to_parity(curve((0.0, 0.6), (1.0, 0.79)), 0.8) is None


def test_aiq_integrates_the_non_decreasing_upper_hull() -> None:
    line = curve((0.0, 0.0), (1.0, 1.0))
    assert aiq(line) == pytest.approx(0.5)
    dominated = [*line, OperatingPoint(0.0, 0.5, 0.2, 0.5)]  # under the line: no change
    assert aiq(dominated) == pytest.approx(0.5)
    lifted = [*line, OperatingPoint(0.0, 0.5, 1.0, 0.5)]  # reaches 1.0 at half the cost
    assert upper_hull([(p.cost, p.quality) for p in lifted]) == [(0.0, 0.0), (0.5, 1.0)]
    assert aiq(lifted) == pytest.approx(0.25 + 0.5)  # rises to 1.0 then held flat
    falling = [*line, OperatingPoint(0.0, 0.5, 1.0, 0.5), OperatingPoint(0.0, 1.0, 0.9, 1.0)]
    assert aiq(falling) == pytest.approx(0.75)  # a costlier, worse point never lowers it


def test_routellm_gsm8k_is_imported_with_the_published_accuracies() -> None:
    data = read_routellm_csv(GSM8K).outcomes
    assert len(data.rows) == 1319
    assert data.tiers == ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview")
    assert data.quality(data.tiers[0]) == pytest.approx(0.638, abs=0.001)
    assert data.quality(data.tiers[1]) == pytest.approx(0.857, abs=0.001)
    assert data.cost(data.tiers[1]) > 50 * data.cost(data.tiers[0])
    splits = {row.split for row in data.rows}
    assert splits == {"train", "test"}
    assert abs(len(data.split("test").rows) - 660) < 40  # half, by a stable hash


def test_a_random_router_scores_apgr_one_half_on_gsm8k() -> None:
    data = read_routellm_csv(GSM8K).outcomes
    runs = [report(data, score_points(data, random_scores(len(data.rows), s))) for s in range(10)]
    assert statistics.mean(r.apgr or 0.0 for r in runs) == pytest.approx(0.5, abs=0.02)
    assert statistics.mean(r.cpt["50%"] or 0.0 for r in runs) == pytest.approx(0.5, abs=0.03)
    points = runs[0].points
    assert [round(p.strong_fraction, 1) for p in points] == [
        1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0
    ]  # fmt: skip


def test_a_cascade_curve_keeps_the_best_point_at_each_call_share() -> None:
    from tierserve.evaluate.sweep import best_per_call_share

    points = [
        OperatingPoint(threshold=0.1, strong_fraction=0.5, quality=0.6, cost=2.0),
        OperatingPoint(threshold=0.2, strong_fraction=0.5, quality=0.8, cost=3.0),
        OperatingPoint(threshold=0.3, strong_fraction=0.5, quality=0.8, cost=2.5),
        OperatingPoint(threshold=0.0, strong_fraction=0.0, quality=0.5, cost=1.0),
    ]
    curve = best_per_call_share(points)
    assert [(p.strong_fraction, p.quality, p.cost) for p in curve] == [
        (0.0, 0.5, 1.0),
        (0.5, 0.8, 2.5),
    ]
