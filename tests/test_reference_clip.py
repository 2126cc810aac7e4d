"""The real clip in ../shared: a border collie galloping past, with ViTPose-H keypoints as a reference."""

from __future__ import annotations

from vision.analysis import analyze_path
from vision.video import probe


def test_reference_keypoints_are_read_and_the_gallop_is_not_scored(forever_dog):
    r = analyze_path(forever_dog / "dog_vitpose_ap10k.json", fps=30).report
    q = r["quality"]
    assert q["view"] == "lateral" and q["direction"] == "left_to_right"
    assert q["hind_strides"] >= 8
    assert r["metrics"]["bunny_hop"]["gait_type"] == "gallop"
    # a galloping dog is not judged for symmetry or bunny hopping: no confident score from the wrong gait
    assert q["usable"] is False and any("gallop" in s for s in q["reasons"])
    assert r["metrics"]["symmetry"]["weaker_side"] is None
    assert 0.45 < r["metrics"]["gait"]["stride_time_s"]["value"] < 0.7


def test_reference_video_probe(forever_dog):
    info = probe(forever_dog / "dog.mp4")
    assert (info.width, info.height) == (288, 216)
    assert info.n_frames == 278 and abs(info.fps - 30) < 0.01
