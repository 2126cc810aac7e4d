from __future__ import annotations

import numpy as np

from vision.analysis import analyze_tracks
from vision.synthetic import generate


def test_good_lateral_clip_is_usable():
    q = analyze_tracks(generate(seed=1).tracks).report["quality"]
    assert q["usable"] is True and q["reasons"] == []
    assert q["view"] == "lateral" and q["direction"] == "left_to_right"
    assert q["hind_strides"] >= 10


def test_right_to_left_direction():
    q = analyze_tracks(generate(seed=1, direction=-1).tracks).report["quality"]
    assert q["direction"] == "right_to_left"


def test_short_clip_has_too_few_strides_and_scores_are_withheld():
    r = analyze_tracks(generate(seed=1, duration_s=2.2).tracks).report
    assert r["quality"]["usable"] is False
    assert any("stride" in s for s in r["quality"]["reasons"])
    assert r["quality"]["advice"]
    assert r["metrics"]["symmetry"]["hind_asymmetry_pct"] is None
    assert r["metrics"]["symmetry"]["weaker_side"] is None
    assert r["metrics"]["bunny_hop"]["flag"] is None


def test_rear_view_is_recognised():
    c = generate(seed=1)
    ds = c.tracks.copy()
    pos = ds["position"].values.copy()
    names = list(ds["keypoint"].values)
    # squash the body axis: withers straight above the tail base, as seen from behind
    pos[:, 0, names.index("withers"), 0] = pos[:, 0, names.index("tail_base"), 0] + 3
    for face in ("nose", "left_eye", "right_eye"):
        pos[:, :, names.index(face), 0] = np.nan
    ds["position"] = (ds["position"].dims, pos)
    q = analyze_tracks(ds).report["quality"]
    assert q["view"] == "rear"
    assert q["usable"] is False


def test_no_dog_is_reported_plainly():
    c = generate(seed=1)
    ds = c.tracks.copy()
    ds["confidence"] = ds["confidence"] * 0.0 + 0.01
    r = analyze_tracks(ds).report
    assert r["quality"]["usable"] is False
    assert "No dog was found in the clip." in r["quality"]["reasons"]


def test_tiny_dog_in_frame():
    c = generate(seed=1, body_length_px=60)
    q = analyze_tracks(c.tracks).report["quality"]
    assert any("small" in s for s in q["reasons"])


def test_low_fps_note_for_tremor():
    q = analyze_tracks(generate(seed=1, fps=24).tracks).report["quality"]
    assert any("60 fps" in n for n in q["notes"])


def test_usable_fraction_reported_per_keypoint():
    q = analyze_tracks(generate(seed=1, dropout_rate=0.2).tracks).report["quality"]
    assert 0.7 < q["usable_fraction"]["left_hind_paw"] < 0.9
