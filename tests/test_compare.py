from __future__ import annotations

import itertools

import numpy as np
import pytest

from vision.analysis import analyze_tracks
from vision.compare import METRICS, block_resample, compare_metric, compare_reports, verdict_lines
from vision.synthetic import generate


def _report(**kw):
    return analyze_tracks(generate(**kw).tracks).report


@pytest.fixture(scope="module")
def same_gait():
    return [_report(seed=s, limp_side="left", limp_severity=0.2, jitter_px=1.5, stride_cv=0.05) for s in range(5)]


def test_same_gait_pairs_are_never_flagged(same_gait):
    for a, b in itertools.combinations(same_gait, 2):
        result = compare_reports(a, b)
        assert result["flag"] is False, result["worse"]


def test_real_worsening_is_flagged(same_gait):
    worse = _report(seed=10, limp_side="left", limp_severity=0.55, jitter_px=1.5, stride_cv=0.05)
    result = compare_reports(same_gait[0], worse)
    assert result["flag"] is True
    m = result["metrics"]["hind_asymmetry_pct"]
    assert m["status"] == "worse" and m["change"] > 0 and m["ci95"][0] > 0


def test_improvement_is_better_not_flagged(same_gait):
    worse = _report(seed=10, limp_side="left", limp_severity=0.55, jitter_px=1.5, stride_cv=0.05)
    result = compare_reports(worse, same_gait[0])
    assert result["flag"] is False
    assert result["metrics"]["hind_asymmetry_pct"]["status"] == "better"


def test_new_stride_to_stride_wobble_is_flagged(same_gait):
    wobbly = _report(seed=14, limp_side="left", limp_severity=0.2, jitter_px=1.5, stride_cv=0.3)
    result = compare_reports(same_gait[0], wobbly)
    assert result["metrics"]["stride_time_cv_pct"]["status"] == "worse"
    assert result["flag"]


def test_block_resample_keeps_runs_of_neighbouring_strides():
    values = np.arange(27, dtype=float)
    rows = block_resample(values, 50, np.random.default_rng(0))
    assert rows.shape == (50, 27)
    steps = np.diff(rows, axis=1)
    assert np.all(steps[:, [0, 1, 3, 4]] == 1)  # runs of ceil(27 ** (1/3)) = 3 consecutive strides
    assert set(np.unique(rows)) <= set(values)


def test_new_bunny_hopping_is_flagged(same_gait):
    hop = _report(seed=12, hind_phase=0.03)
    result = compare_reports(same_gait[0], hop)
    assert result["metrics"]["hind_phase_deviation"]["status"] == "worse"
    assert result["flag"]


def test_new_tremor_is_flagged(same_gait):
    tremor = _report(seed=13, limp_side="left", limp_severity=0.2, tremor_hz=7, tremor_amp_bl=0.015)
    assert compare_reports(same_gait[0], tremor)["metrics"]["tremor"]["status"] == "worse"


def test_unusable_clip_gives_uncertain(same_gait):
    short = _report(seed=1, duration_s=2.0)
    result = compare_reports(same_gait[0], short)
    assert result["flag"] is False
    assert all(m["status"] == "uncertain" for m in result["metrics"].values())


def test_required_fields_per_metric(same_gait):
    result = compare_reports(same_gait[0], same_gait[1])
    for m in result["metrics"].values():
        assert {"before", "after", "change", "ci95", "status"} <= set(m)
        assert m["status"] in {"worse", "better", "unchanged", "uncertain", "changed"}


def test_noise_floor_blocks_tiny_but_significant_changes():
    spec = next(s for s in METRICS if s.name == "hind_asymmetry_pct")
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 0.2, 40)
    b = rng.normal(6.0, 0.2, 40)  # significant, but below 3 SI points
    assert compare_metric(a, b, spec)["status"] in {"unchanged", "uncertain"}
    c = rng.normal(12.0, 0.2, 40)
    assert compare_metric(a, c, spec)["status"] == "worse"


def test_clips_tracked_by_different_model_versions_carry_a_note(same_gait):
    import copy

    before, after = copy.deepcopy(same_gait[0]), copy.deepcopy(same_gait[1])
    plain = compare_reports(before, after)
    assert plain["model_version"] == {"before": None, "after": None} and not any("model" in n for n in plain["notes"])
    before["source"]["model_version"], after["source"]["model_version"] = "0.7.0", "0.7.1"
    result = compare_reports(before, after)
    assert result["model_version"] == {"before": "0.7.0", "after": "0.7.1"}
    (note,) = [n for n in result["notes"] if "model" in n]
    assert "0.7.0, then 0.7.1" in note
    assert result["flag"] == plain["flag"] and result["metrics"] == plain["metrics"]  # a note, not a verdict
    after["source"]["model_version"] = "0.7.0"
    assert not any("model" in n for n in compare_reports(before, after)["notes"])


def test_an_unscored_clip_makes_the_comparison_not_comparable(same_gait):
    short = _report(seed=1, duration_s=2.0)
    assert not short["quality"]["usable"]
    for before, after, which in ((same_gait[0], short, "second"), (short, same_gait[0], "first")):
        result = compare_reports(before, after)
        assert result["comparable"] is False and result["reason"] == f"the {which} clip could not be scored"
        assert not {m["status"] for m in result["metrics"].values()} & {"worse", "better", "unchanged"}
        lines = verdict_lines(result, "1 Jan 2026", "8 Jan 2026")
        unscored = "8 Jan 2026" if which == "second" else "1 Jan 2026"
        assert lines[0].startswith(f"{unscored} could not be scored: ")
        assert short["quality"]["reasons"][0].rstrip(".") in lines[0]
        assert not any("no change" in line.lower() or "no worsening" in line.lower() for line in lines)


def test_clips_filmed_from_different_views_are_not_compared(same_gait):
    import copy

    rear = copy.deepcopy(same_gait[1])
    rear["quality"]["view"] = "oblique"
    result = compare_reports(same_gait[0], rear)
    assert result["comparable"] is False and "different views" in result["reason"]
    assert all(m["status"] == "uncertain" for m in result["metrics"].values())
    (line,) = verdict_lines(result, "a.json", "b.json")
    assert line.startswith("a.json and b.json cannot be compared: the clips were filmed from different views")


def test_asymmetry_of_clips_showing_opposite_sides_is_not_matched(same_gait):
    import copy

    before, after = copy.deepcopy(same_gait[0]), copy.deepcopy(same_gait[1])
    before["metrics"]["symmetry"]["near_far"]["passes"] = "left_near"
    after["metrics"]["symmetry"]["near_far"]["passes"] = "right_near"
    result = compare_reports(before, after)
    assert result["comparable"] is True
    assert set(result["not_matched"]) == {"hind_asymmetry_pct", "stance_time_si", "pelvis_min_diff_pct_bl"}
    for name in result["not_matched"]:
        assert result["metrics"][name]["status"] == "uncertain"
    assert "reason" not in result["metrics"]["stride_time_cv_pct"]  # the other measures are still compared
    lines = verdict_lines(result, "1 Jan", "8 Jan")
    assert any(line.startswith("Hind-leg asymmetry (%) could not be matched: ") for line in lines)
    before["metrics"]["symmetry"]["near_far"]["passes"] = "both"
    assert compare_reports(before, after)["not_matched"] == {}


def test_the_verdict_never_claims_no_change_when_nothing_could_be_told(same_gait):
    result = compare_reports(same_gait[0], same_gait[1])
    assert verdict_lines(result, "a", "b") == ["No worsening beyond the clips' own stride-to-stride noise."]
    for m in result["metrics"].values():
        m["status"] = "uncertain"
    (line,) = verdict_lines(result, "a", "b")
    assert "not a sign of no change" in line


def test_leg_pairing_metrics_are_not_compared_when_a_clip_did_not_tell_the_hind_legs_apart(same_gait):
    from tests.gait.test_identity import paws_by_place

    limp = generate(seed=10, limp_side="left", limp_severity=0.55, jitter_px=1.5, stride_cv=0.05)
    after = analyze_tracks(paws_by_place(limp.tracks, 1)).report
    assert after["metrics"]["hind_labels"]["follow_legs"] is False
    result = compare_reports(same_gait[0], after)
    assert result["comparable"] is True
    for name in ("hind_asymmetry_pct", "stance_time_si", "pelvis_min_diff_pct_bl", "hind_phase_deviation"):
        assert result["metrics"][name]["status"] == "uncertain", name
        assert result["metrics"][name]["reason"] == "the two hind legs were not told apart in the second clip"
    assert result["metrics"]["stride_time_cv_pct"]["status"] != "uncertain"  # the rest is still compared
    assert not set(result["worse"]) & {"hind_asymmetry_pct", "stance_time_si", "pelvis_min_diff_pct_bl"}
