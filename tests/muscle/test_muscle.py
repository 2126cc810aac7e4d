"""Muscle indices recovered from rendered silhouettes with known thigh widths."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FOREVER_DOG, need_shared
from vision.analysis import analyze_tracks
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.compare import compare_reports
from vision.muscle.indices import lateral_widths, rear_widths
from vision.muscle.metrics import muscle_from_frames
from vision.muscle.silhouette import segment_dog
from vision.synthetic import generate, generate_rear, render_frame

SIZE, L = (640, 360), 190.0
DRAW = {"fore_width_bl": 0.07, "body_depth_bl": 0.12}


def _lateral_clip(thigh=(0.16, 0.16), seed=1):
    c = generate(seed=seed, frame_size=SIZE, body_length_px=L, duration_s=12, jitter_px=0.5)
    result = analyze_tracks(c.tracks)

    def frames():
        for i, t in enumerate(c.tracks["time"].values):
            pts = {n: (c.clean_position[i, k, 0], c.clean_position[i, k, 1]) for k, n in enumerate(CANONICAL_KEYPOINTS)}
            yield t, render_frame(pts, SIZE, L, thigh_width_bl=thigh, **DRAW)

    report = result.report
    report["metrics"]["muscle"] = muscle_from_frames(result.tracks, result.events, "lateral", frames())
    return c, report


def _rear_report(thigh, seed=0):
    ds, frames = generate_rear(thigh_width_bl=thigh, seed=seed)
    result = analyze_tracks(ds)
    report = result.report
    times = ds["time"].values
    report["metrics"]["muscle"] = muscle_from_frames(result.raw_tracks, None, "rear", zip(times, frames, strict=True))
    return report


def test_silhouette_covers_the_rendered_dog():
    c = generate(seed=2, frame_size=SIZE, body_length_px=L)
    i = 50
    pts = {n: (c.clean_position[i, k, 0], c.clean_position[i, k, 1]) for k, n in enumerate(CANONICAL_KEYPOINTS)}
    img = render_frame(pts, SIZE, L, **DRAW)
    background = render_frame({}, SIZE, L)
    truth = (img != background).any(axis=2)
    kp = np.concatenate([c.clean_position[i], np.full((20, 1), 0.9)], axis=1)
    sil = segment_dog(img, kp)
    assert sil is not None and sil.ok
    x0, y0 = sil.origin
    h, w = sil.mask.shape
    import cv2

    crop_truth = cv2.resize(
        truth[int(y0) : int(y0) + int(round(h / sil.scale)), int(x0) : int(x0) + int(round(w / sil.scale))].astype(
            np.uint8
        ),
        (w, h),
        interpolation=cv2.INTER_NEAREST,
    ).astype(bool)
    iou = (sil.mask & crop_truth).sum() / (sil.mask | crop_truth).sum()
    assert iou > 0.85


def test_too_few_keypoints_gives_no_silhouette():
    kp = np.full((20, 3), np.nan)
    assert segment_dog(np.zeros((100, 100, 3), np.uint8), kp) is None


def test_lateral_thigh_index_recovered():
    _, report = _lateral_clip()
    m = report["metrics"]["muscle"]
    assert m["available"] and m["frames_used"] >= 8
    # truth: caudal depth = half the band width = 0.08 body lengths
    assert m["thigh_width_index"]["value"] == pytest.approx(0.08, rel=0.06)
    assert m["repeatability"]["too_noisy"] is False


def test_lateral_thinning_is_flagged_across_weeks_and_unchanged_is_not():
    weeks = [_lateral_clip((0.16, 0.16), seed=s)[1] for s in (1, 2)]
    thinner = _lateral_clip((0.144, 0.144), seed=3)[1]  # 10 % thinner thighs
    same = compare_reports(weeks[0], weeks[1])
    assert same["metrics"]["thigh_width_index"]["status"] in {"unchanged", "uncertain"}
    assert "thigh_width_index" not in same["worse"]
    worse = compare_reports(weeks[0], thinner)
    assert worse["metrics"]["thigh_width_index"]["status"] == "worse"
    assert worse["metrics"]["thigh_width_index"]["change"] < 0


@pytest.mark.parametrize("thin_side", ["left", "right"])
def test_rear_view_attributes_thinning_to_the_thinned_side(thin_side):
    thigh = (0.198, 0.22) if thin_side == "left" else (0.22, 0.198)
    m = _rear_report(thigh)["metrics"]["muscle"]
    assert m["view"] == "rear" and m["available"]
    assert m["weaker_side"] == thin_side
    assert m["thigh_asymmetry_pct"] == pytest.approx(10.5, abs=3)


def test_rear_view_symmetric_dog_has_no_weaker_side_and_weeks_flag_thinning():
    base = [_rear_report((0.22, 0.22), seed=s) for s in (1, 2)]
    assert all(b["metrics"]["muscle"]["weaker_side"] is None for b in base)
    assert "thigh_asymmetry_pct" not in compare_reports(base[0], base[1])["worse"]
    thinned = _rear_report((0.198, 0.22), seed=3)
    result = compare_reports(base[0], thinned)
    assert result["metrics"]["thigh_asymmetry_pct"]["status"] == "worse"


def test_widths_need_keypoints():
    from vision.muscle.silhouette import Silhouette

    sil = Silhouette(np.ones((50, 50), bool), (0.0, 0.0), 1.0, 1.0)
    kp = np.full((20, 3), np.nan)
    assert lateral_widths(sil, kp, "left") is None
    assert rear_widths(sil, kp) is None


def test_real_clip_repeatability_is_measured():
    """The galloping collie of ../shared: the index is measured per stride and its CV reported."""
    need_shared(FOREVER_DOG / "dog.mp4")
    from vision.io import load_poses
    from vision.video import iter_frames

    result = analyze_tracks(load_poses(FOREVER_DOG / "dog_vitpose_ap10k.json", fps=30))
    m = muscle_from_frames(
        result.tracks, result.events, "lateral", ((f.time_s, f.image) for f in iter_frames(FOREVER_DOG / "dog.mp4"))
    )
    assert m["frames_used"] >= 5
    cv = m["repeatability"]["thigh_cv_pct"]
    assert cv is not None and np.isfinite(cv)
    assert m["repeatability"]["too_noisy"] is (cv > 15.0)


def test_overlay_draws_the_measured_thigh(tmp_path):
    from tests.pose.test_video_tracking import OracleBackend
    from vision.analysis import analyze_path
    from vision.overlay import overlay_frames
    from vision.synthetic import render_video

    c = generate(seed=4, frame_size=SIZE, body_length_px=L, duration_s=6)
    path = tmp_path / "walk.mp4"
    render_video(c, str(path), thigh_width_bl=(0.16, 0.16), **DRAW)
    result = analyze_path(path, backend=OracleBackend(c))
    muscle = result.report["metrics"]["muscle"]
    assert muscle["available"] and muscle["measurements"]
    t0 = muscle["measurements"][0]["time"]
    yellow = []
    for i, img in enumerate(overlay_frames(path, result.tracks, result.events, muscle=muscle)):
        t = c.tracks["time"].values[i]
        n = int(((img[..., 0] > 230) & (img[..., 1] > 200) & (img[..., 2] < 60)).sum())
        yellow.append((abs(t - t0) < 0.1, n))
    assert max(n for near, n in yellow if near) > 20
    assert min(n for near, n in yellow if not near) <= max(n for near, n in yellow if near) / 4
