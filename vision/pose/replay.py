"""A backend that replays known keypoints frame by frame (demo clips drawn from their own tracks)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from vision.io import ensure_canonical
from vision.pose.backend import FramePose


class ReplayBackend:
    """Return the i-th frame of a tracks dataset for the i-th decoded frame.

    Used for clips the project renders itself, whose keypoints are known, so that
    they go through the same video pipeline as uploads without the model.
    """

    name = "rendered keypoints"

    def __init__(self, tracks: xr.Dataset) -> None:
        ds = ensure_canonical(tracks)
        self.keypoint_names = tuple(str(k) for k in ds["keypoint"].values)
        pos = ds["position"].isel(individual=0).values.transpose(0, 2, 1)  # (time, keypoint, 2)
        conf = ds["confidence"].isel(individual=0).values[..., None]
        self._frames = np.concatenate([pos, conf], axis=2).astype(np.float32)
        self._i = 0

    def reset(self) -> None:
        """Start again at the first frame."""
        self._i = 0

    def get_pose(self, image_rgb: np.ndarray) -> FramePose:
        """The known keypoints of the next frame (no dog once the tracks run out)."""
        if self._i >= len(self._frames):
            return FramePose.empty(len(self.keypoint_names))
        kp = self._frames[self._i]
        self._i += 1
        return FramePose(kp, None, 1.0)
