"""The pipeline's handling of hind-paw labels that do not follow the legs (vision.analysis + vision.gait.identity)."""

from __future__ import annotations

import pytest

from tests.gait.test_identity import paws_by_place
from vision.analysis import LABELS_NOTE, analyze_tracks
from vision.gait.symmetry import LABELS_REASON
from vision.synthetic import generate


@pytest.mark.parametrize("limp", [None, "right"])
def test_paws_named_by_place_give_no_side_and_no_phase_but_the_clip_is_scored(limp):
    c = generate(seed=2, jitter_px=1.5, limp_side=limp, limp_severity=0.5 if limp else 0.0)
    report = analyze_tracks(paws_by_place(c.tracks, 1)).report
    m = report["metrics"]
    assert m["hind_labels"]["follow_legs"] is False
    assert report["quality"]["usable"] is True
    assert m["symmetry"]["weaker_side"] is None
    assert m["symmetry"]["hind_asymmetry_pct"] is None
    assert m["symmetry"]["within_noise"] is None  # not "within noise": it was not measured
    assert m["symmetry"]["legs_told_apart"] is False
    assert m["bunny_hop"]["hind_phase"] is None
    assert m["bunny_hop"]["flag"] is None
    assert m["bunny_hop"]["gait_type"] == "walk"
    assert LABELS_NOTE in report["summary"]
    assert not m["symmetry"]["weakness_pct"]["per_stride"]  # the front-vs-back figures are not kept
    assert m["symmetry"]["stance_time_si"]["value"] is None
    assert m["symmetry"]["reason"] == LABELS_REASON
    assert len([line for line in report["summary"] if "told apart" in line]) == 1  # said once
    assert not any("within measurement noise" in line for line in report["summary"])


def test_labels_that_follow_the_legs_keep_every_figure():
    c = generate(seed=2, jitter_px=1.5, limp_side="right", limp_severity=0.5)
    m = analyze_tracks(c.tracks).report["metrics"]
    assert m["hind_labels"]["follow_legs"] is True
    assert m["symmetry"]["weaker_side"] == "right"
    assert m["symmetry"].get("legs_told_apart") is not False
    assert m["bunny_hop"]["hind_phase"] == pytest.approx(0.5, abs=0.08)


def test_a_gallop_whose_leading_hind_paw_stays_ahead_is_still_refused():
    """The leading hind paw of a gallop stays ahead, so the label check reads "not told apart"; still no score."""
    c = generate(hind_phase=0.05, front_phase=0.05, duty_factor=0.25, stride_hz=2.2, speed_bl_s=3, seed=4)
    ds = c.tracks.copy(deep=True)
    names = list(ds["keypoint"].values)
    lead = ds["position"].values[:, 0, names.index("left_hind_paw"), 0]
    lead += 0.15 * 220.0  # the left hind leads by 0.15 body lengths (walking to the right)
    report = analyze_tracks(ds).report
    assert report["metrics"]["hind_labels"]["follow_legs"] is False
    assert report["metrics"]["bunny_hop"]["gait_type"] == "gallop"
    assert report["quality"]["usable"] is False
    assert any("gallop" in reason for reason in report["quality"]["reasons"])


def test_a_far_leg_hidden_behind_the_near_one_is_still_explained_in_the_summary():
    """The pelvis check's note (legs not told apart for another reason) is not dropped with the label check's."""
    c = generate(seed=1, jitter_px=1.0)
    ds = c.tracks.copy(deep=True)
    names = list(ds["keypoint"].values)
    pos = ds["position"].values
    for part in ("stifle", "hock", "hind_paw"):  # the far leg's labels sit on the near leg
        pos[:, :, names.index(f"left_{part}"), :] = pos[:, :, names.index(f"right_{part}"), :] + 2.0
    report = analyze_tracks(ds).report
    bunny = report["metrics"]["bunny_hop"]
    assert report["metrics"]["hind_labels"]["follow_legs"] is not False
    assert bunny["legs_told_apart"] is False and "hidden" in bunny["note"]
    assert bunny["note"] in report["summary"]
