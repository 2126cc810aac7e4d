"""Figure builders are pure functions of reports: tested without Streamlit."""

import datetime as dt

from vision.analysis import analyze_tracks
from vision.compare import compare_reports
from vision.dashboard.figures import (
    baseline_band,
    comparison_chart,
    per_stride_chart,
    phase_chart,
    thigh_index_chart,
    trend_chart,
    weakness_points,
)
from vision.synthetic import generate

GOOD = analyze_tracks(generate(seed=1, limp_side="left", limp_severity=0.3).tracks).report
WORSE = analyze_tracks(generate(seed=2, limp_side="left", limp_severity=0.6).tracks).report
BAD = analyze_tracks(generate(seed=3, duration_s=2).tracks).report


def test_weakness_points_skip_unscored_clips_and_are_positive():
    pts = weakness_points([(dt.date(2026, 1, 1), GOOD), (dt.date(2026, 1, 8), BAD), (dt.date(2026, 1, 15), None)])
    assert pts[0]["value"] > 0 and pts[0]["low"] <= pts[0]["value"] <= pts[0]["high"]
    assert pts[1]["value"] is None and pts[2]["value"] is None


def test_baseline_band_needs_two_scored_clips():
    assert baseline_band([{"value": 5.0}]) is None
    lo, hi = baseline_band([{"value": 4.0}, {"value": 6.0}, {"value": 5.0}])
    assert lo < 5.0 < hi


def test_trend_chart_marks_flagged_weeks():
    history = [(dt.date(2026, 1, d), r) for d, r in ((1, GOOD), (8, GOOD), (15, WORSE))]
    fig = trend_chart(history, flagged_dates=[dt.date(2026, 1, 15)])
    names = [t.name for t in fig.data]
    assert names == ["own baseline", "asymmetry", "flagged for vet"]
    assert list(fig.data[2].x) == [dt.date(2026, 1, 15)]


def test_thigh_chart_uses_available_muscle_blocks_only():
    muscle = {"available": True, "thigh_width_index": {"value": 0.08, "ci95": [0.078, 0.082]}}
    with_muscle = {**GOOD, "metrics": {**GOOD["metrics"], "muscle": muscle}}
    fig = thigh_index_chart([(dt.date(2026, 1, 1), with_muscle), (dt.date(2026, 1, 8), GOOD)])
    assert list(fig.data[-1].y) == [0.08]


def test_per_stride_phase_and_comparison_charts():
    bars = per_stride_chart(GOOD).data[0]
    assert len(bars.y) == len(GOOD["metrics"]["symmetry"]["weakness_pct"]["per_stride"])
    assert len(phase_chart(GOOD).data[0].theta) == len(GOOD["metrics"]["bunny_hop"]["per_stride_phase"])
    comparison = compare_reports(GOOD, WORSE)
    fig = comparison_chart(comparison)
    with_change = [m for m in comparison["metrics"].values() if m.get("change") is not None]
    assert len(fig.data) == len(with_change)
    assert "red" in {t.marker.color for t in fig.data}  # the worse asymmetry is drawn red
