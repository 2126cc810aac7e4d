"""Pose sources behind one small interface (as in DeepLabCut-live).

A backend turns one upright RGB frame into one dog's keypoints::

    backend.reset()
    pose = backend.get_pose(image)   # FramePose

:func:`track_video` drives a backend over a clip and returns a tracks dataset.
The default backend is the project's ONNX dog model (:mod:`vision.model`),
imported lazily so that reading pose files never loads onnxruntime.
"""

from vision.pose.backend import FramePose, ModelTracker, PoseBackend, default_backend
from vision.pose.video_tracking import track_video

__all__ = ["FramePose", "ModelTracker", "PoseBackend", "default_backend", "track_video"]
