"""The shipped keypoint model wired into the video pipeline (skips when models/dog_pose.json is absent)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vision.video import write_video

try:
    from vision.model.detector import default_model_path
except ImportError:  # pragma: no cover - the model package is part of the project
    default_model_path = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    default_model_path is None or not default_model_path().is_file(), reason="models/dog_pose.json is not present"
)


def test_clip_without_a_dog_is_reported_not_scored(tmp_path):
    scene = np.tile(np.linspace(40, 220, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))  # a picture, no dog
    frames = [scene.copy() for _ in range(180)]
    path = write_video(tmp_path / "empty scene.mp4", frames, 30)
    out = subprocess.run(
        [sys.executable, "-m", "vision", "analyze", str(path), "--json", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["source"]["backend"] == "hindsight-onnx"  # the model is the default pose source
    manifest = json.loads(default_model_path().read_text())
    assert report["source"]["model_version"] == manifest["version"]  # a later comparison can tell models apart
    assert report["quality"]["usable"] is False
    assert "No dog was found in the clip." in report["quality"]["reasons"]
    assert report["metrics"]["symmetry"]["weaker_side"] is None


def test_model_backend_follows_a_rendered_dog(tmp_path):
    from vision.pose import default_backend, track_video
    from vision.synthetic import generate, render_video

    clip = generate(duration_s=3, frame_size=(640, 360), body_length_px=200, seed=5)
    path = tmp_path / "walk.mp4"
    render_video(clip, str(path))
    tracked = track_video(path, default_backend())
    assert tracked.tracks.sizes["time"] == clip.tracks.sizes["time"]
    assert np.isfinite(tracked.scores).all()
