from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gait.conftest import out_and_back, prepared
from vision import clean
from vision.analysis import analyze_tracks
from vision.gait.events import detect_events
from vision.gait.symmetry import symmetry_metrics
from vision.synthetic import generate, mirror_labels


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("severity", [0.2, 0.5])
def test_limp_side_is_recovered(side, severity):
    _, _, sm, ev = prepared(limp_side=side, limp_severity=severity, seed=11, jitter_px=1.5)
    m = symmetry_metrics(sm, ev)
    assert m["weaker_side"] == side
    assert m["hind_asymmetry_pct"] > 3


def test_sound_dog_has_no_weaker_side():
    for seed in range(4):
        _, _, sm, ev = prepared(seed=seed, jitter_px=1.5)
        m = symmetry_metrics(sm, ev)
        assert m["weaker_side"] is None, seed
        assert abs(m["weakness_pct"]["value"]) < 2.5
        # A figure whose interval includes zero is not a headline: it reads "within measurement noise".
        assert (m["hind_asymmetry_pct"] is None) == m["within_noise"]


def test_asymmetry_grows_with_severity():
    values = []
    for sev in (0.1, 0.3, 0.6):
        _, _, sm, ev = prepared(limp_side="right", limp_severity=sev, seed=3)
        values.append(abs(symmetry_metrics(sm, ev)["weakness_pct"]["value"]))
    assert values[0] < values[1] < values[2]


@pytest.mark.parametrize("side,sign", [("left", -1), ("right", 1)])
def test_pelvic_min_diff_points_to_the_lame_side(side, sign):
    _, _, sm, ev = prepared(limp_side=side, limp_severity=0.5, seed=8)
    mind = symmetry_metrics(sm, ev)["pelvis_min_diff_pct_bl"]
    assert sign * mind["value"] > 0.3
    assert sign * mind["ci95"][0] > 0 if sign > 0 else mind["ci95"][1] < 0


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), side=st.sampled_from(["left", "right"]), severity=st.floats(0.3, 0.7))
def test_mirroring_left_right_flips_weaker_side(seed, side, severity):
    c = generate(limp_side=side, limp_severity=severity, seed=seed)
    a = analyze_tracks(c.tracks).report["metrics"]["symmetry"]
    b = analyze_tracks(mirror_labels(c.tracks)).report["metrics"]["symmetry"]
    assert a["weaker_side"] == side
    assert b["weaker_side"] == ("left" if side == "right" else "right")
    # Mirrored, each right stride is paired with the next left one (half a stride later), so the
    # pairs differ at the clip's ends: the mirrored weakness must lie within the original's interval, sign flipped.
    wa, wb = a["weakness_pct"], b["weakness_pct"]
    assert wa["ci95"][0] <= -wb["value"] <= wa["ci95"][1]


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.4, 3.0), shift=st.floats(-100.0, 100.0))
def test_scale_and_time_shift_leave_scores_unchanged(seed, scale, shift):
    base = generate(limp_side="left", limp_severity=0.4, seed=seed)
    ref = analyze_tracks(base.tracks).report["metrics"]
    moved = base.tracks.copy()
    moved["position"] = moved["position"] * scale + 7.0
    moved.attrs["frame_width"] = base.tracks.attrs["frame_width"] * scale  # a zoom scales the frame too
    moved = moved.assign_coords(time=moved["time"].values + abs(shift))
    got = analyze_tracks(moved).report["metrics"]
    assert got["symmetry"]["weaker_side"] == ref["symmetry"]["weaker_side"]
    assert got["symmetry"]["hind_asymmetry_pct"] == pytest.approx(
        ref["symmetry"]["hind_asymmetry_pct"], rel=0.02, abs=0.2
    )
    assert got["bunny_hop"]["hind_phase"] == pytest.approx(ref["bunny_hop"]["hind_phase"], abs=0.01)


def test_swapped_labels_do_not_create_asymmetry():
    segs = ((1.0, 3.5), (6.0, 7.2))
    c = generate(seed=21, swap_segments=segs, jitter_px=1.0)
    m = analyze_tracks(c.tracks).report["metrics"]["symmetry"]
    assert m["weaker_side"] is None
    assert m["n_stride_pairs"] >= 9

    def strikes(ds, repair):
        ds = clean.drop_low_confidence(ds)
        if repair:
            ds = clean.repair_swaps(ds)[0]
        return detect_events(clean.smooth(clean.interpolate_gaps(ds))).strikes["left_hind"]

    truth = c.strikes["left_hind"]
    repaired = strikes(c.tracks, True)
    assert max(np.min(np.abs(truth - s)) for s in repaired) < 1 / 30
    unrepaired = strikes(c.tracks, False)
    assert max(np.min(np.abs(truth - s)) for s in unrepaired) > 0.1  # the swap really corrupts timing


def test_one_direction_names_no_side_within_the_near_far_uncertainty():
    # Walking to the right, the dog shows its right side; a mild limp is within the far leg's viewing bias.
    _, _, sm, ev = prepared(limp_side="left", limp_severity=0.2, seed=11, jitter_px=1.5)
    m = symmetry_metrics(sm, ev, near_far_bias=(8.0, 12.0))
    assert m["near_far"]["passes"] == "right_near"
    assert m["weaker_side"] is None
    assert "one way only" in m["near_far"]["note"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_out_and_back_names_the_side_and_cancels_the_bias(side):
    sm, ev = out_and_back(limp_side=side, limp_severity=0.5, seed=5, jitter_px=1.5)
    plain = symmetry_metrics(sm, ev, near_far_bias=(0.0, 0.0))
    biased = symmetry_metrics(sm, ev, near_far_bias=(8.0, 12.0))
    assert plain["near_far"]["passes"] == "both"
    assert plain["weaker_side"] == side == biased["weaker_side"]
    # Each leg was the near one once: a constant far-leg correction cancels between the passes.
    assert biased["weakness_pct"]["value"] == pytest.approx(plain["weakness_pct"]["value"], abs=2.0)


def test_corrected_weakness_removes_the_far_leg_bias():
    from vision.gait.symmetry import corrected_weakness

    raw = np.array([10.0, -6.0, 0.0])
    out = corrected_weakness(raw, ["left", "right", None], 8.0)
    # Left near -> the far leg is the right, read 8 points weaker (+): subtract; right near: add.
    assert out.tolist() == [2.0, 2.0, 0.0]
