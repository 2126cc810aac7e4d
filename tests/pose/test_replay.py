import numpy as np

from vision.pose.replay import ReplayBackend
from vision.synthetic import generate


def test_replay_returns_each_frame_then_no_dog():
    c = generate(duration_s=1.0, seed=1)
    backend = ReplayBackend(c.tracks)
    n = c.tracks.sizes["time"]
    poses = [backend.get_pose(np.zeros((4, 4, 3), np.uint8)) for _ in range(n + 1)]
    expected = c.tracks["position"].isel(individual=0).values[3].T
    np.testing.assert_allclose(poses[3].keypoints[:, :2], expected)
    assert np.isnan(poses[-1].keypoints).all() and poses[-1].score == 0
    backend.reset()
    np.testing.assert_allclose(backend.get_pose(np.zeros((4, 4, 3), np.uint8)).keypoints, poses[0].keypoints)
