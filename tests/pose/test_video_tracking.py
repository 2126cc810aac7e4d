"""A generated video end to end: decode, track, clean, score."""

from __future__ import annotations

import numpy as np
import pytest

from vision.analysis import analyze_path
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.pose import FramePose, track_video
from vision.pose.video_tracking import classify_camera_motion
from vision.synthetic import generate, render_video


class OracleBackend:
    """Reads the keypoints the video was drawn from (with pixel noise): isolates the pipeline from the model."""

    name = "oracle"
    keypoint_names = CANONICAL_KEYPOINTS

    def __init__(self, clip, rotate=0):
        self.clip = clip
        self.i = 0
        self.rng = np.random.default_rng(0)

    def reset(self):
        self.i = 0

    def get_pose(self, image):
        xy = self.clip.clean_position[self.i] + self.rng.normal(0, 1.0, (len(CANONICAL_KEYPOINTS), 2))
        self.i += 1
        kp = np.concatenate([xy, np.full((len(CANONICAL_KEYPOINTS), 1), 0.9)], axis=1).astype(np.float32)
        return FramePose(kp, np.array([0, 0, 10, 10], np.float32), 0.9)


@pytest.fixture(scope="module")
def limping_video(tmp_path_factory):
    clip = generate(
        limp_side="right",
        limp_severity=0.5,
        duration_s=8,
        frame_size=(640, 360),
        body_length_px=120,
        seed=9,
        vfr_jitter=0.3,
    )
    path = tmp_path_factory.mktemp("v") / "walk.mp4"
    render_video(clip, str(path))
    return clip, path


def test_video_end_to_end_recovers_the_limp(limping_video):
    clip, path = limping_video
    seen = []
    result = analyze_path(path, backend=OracleBackend(clip), progress=lambda f, m: seen.append(f))
    r = result.report
    assert r["source"]["kind"] == "video" and r["source"]["video"]["vfr"] is True
    assert r["source"]["model_version"] is None  # the oracle names no model
    assert r["quality"]["usable"] is True
    assert r["metrics"]["symmetry"]["weaker_side"] == "right"
    assert r["quality"]["camera_motion"] in {"static", "panning"}
    assert seen[-1] == 1.0 and seen == sorted(seen)
    # timestamps are the video's real (variable) ones
    np.testing.assert_allclose(
        result.raw_tracks["time"].values, clip.tracks["time"].values - clip.tracks["time"].values[0], atol=0.002
    )


def test_track_video_shapes(limping_video):
    clip, path = limping_video
    vt = track_video(path, OracleBackend(clip))
    n = clip.tracks.sizes["time"]
    assert vt.tracks["position"].shape == (n, 2, 20, 1)
    assert vt.boxes.shape == (n, 4) and vt.scores.shape == (n,)


def test_overlay_is_browser_playable_h264(limping_video, tmp_path):
    from vision.overlay import render_overlay
    from vision.video import probe

    clip, path = limping_video
    result = analyze_path(path, backend=OracleBackend(clip))
    out = render_overlay(path, result.tracks, result.events, tmp_path / "overlay.mp4")
    info = probe(out)
    assert info.codec == "h264" and info.n_frames == clip.tracks.sizes["time"]
    assert out.read_bytes()[4:8] == b"ftyp"


def test_camera_motion_classes():
    still = np.zeros((50, 2))
    assert classify_camera_motion(still, 640) == "static"
    pan = np.tile([5.0, 0.0], (50, 1))
    assert classify_camera_motion(pan, 640) == "panning"
    shake = np.random.default_rng(0).normal(0, 8, (50, 2))
    assert classify_camera_motion(shake, 640) == "shaky"


class CountingBackend:
    """A dog at a fixed place on every frame it is shown; counts the frames it is shown."""

    name = "counting"
    keypoint_names = CANONICAL_KEYPOINTS

    def __init__(self):
        self.calls = 0

    def reset(self):
        self.calls = 0

    def get_pose(self, image):
        self.calls += 1
        kp = np.full((len(CANONICAL_KEYPOINTS), 3), 0.9, np.float32)
        kp[:, 0], kp[:, 1] = 100.0, 80.0
        return FramePose(kp, np.array([50, 50, 150, 110], np.float32), 0.9)


def test_the_model_is_not_run_on_frames_without_a_picture(tmp_path):
    from vision.video import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(30)]
    for i in range(10, 22):
        frames[i] = np.zeros_like(frames[i])  # a black stretch, as in an edited phone clip
    path = write_video(tmp_path / "black.mp4", frames, 30.0)
    backend = CountingBackend()
    tracked = track_video(path, backend)
    assert tracked.blank.tolist() == [10 <= i < 22 for i in range(30)]
    assert backend.calls == 18
    kp = tracked.tracks["position"].values  # (time, space, keypoint, individual)
    assert np.isnan(kp[10:22]).all() and np.isfinite(kp[:10]).all() and np.isfinite(kp[22:]).all()
