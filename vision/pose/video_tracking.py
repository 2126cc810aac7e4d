"""Run a pose backend over a video and measure the camera's own motion."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import xarray as xr

from vision.pose.backend import FramePose, PoseBackend
from vision.tracks import from_arrays, log_step
from vision.video import VideoInfo, iter_frames, probe

ProgressCallback = Callable[[float, str], None]


@dataclass
class VideoTracks:
    """Tracks from a video and what was seen of the camera."""

    tracks: xr.Dataset
    info: VideoInfo
    camera_motion: str
    boxes: np.ndarray  # (time, 4) float32, NaN where no dog
    scores: np.ndarray  # (time,) float32
    blank: np.ndarray | None = None  # (time,) bool: frames with no picture (see is_blank)


#: A frame whose grey levels vary less than this (SD, 0..255) has no picture: black, or a covered lens.
BLANK_SD = 4.0


def grey_thumbnail(image_rgb: np.ndarray) -> np.ndarray:
    """A strided grey view of a frame, about 160 px on its long side (no full-size copy), float32."""
    step = max(1, max(image_rgb.shape[:2]) // 160)
    return cv2.cvtColor(np.ascontiguousarray(image_rgb[::step, ::step]), cv2.COLOR_RGB2GRAY).astype(np.float32)


def is_blank(grey: np.ndarray) -> bool:
    """True when a (downscaled) grey frame is one flat colour: no picture to find a dog in."""
    return bool(float(np.std(grey)) < BLANK_SD)


def _camera_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    (dx, dy), _ = cv2.phaseCorrelate(prev, cur)
    return float(dx), float(dy)


def classify_camera_motion(shifts: np.ndarray, width: int) -> str:
    """``static``, ``panning`` (smooth following) or ``shaky`` from per-frame image shifts.

    Parameters
    ----------
    shifts
        Shape ``(time, 2)``: background shift between consecutive frames, pixels.
    """
    s = shifts[np.isfinite(shifts).all(axis=1)]
    if s.shape[0] < 5 or width <= 0:
        return "unknown"
    speed = np.hypot(s[:, 0], s[:, 1]) / width
    jitter = np.hypot(*(s - np.apply_along_axis(lambda c: np.convolve(c, np.ones(5) / 5, "same"), 0, s)).T) / width
    if np.median(jitter) > 0.004:
        return "shaky"
    if np.median(speed) > 0.002:
        return "panning"
    return "static"


def track_video(
    path: str | os.PathLike[str],
    backend: PoseBackend,
    *,
    info: VideoInfo | None = None,
    progress: ProgressCallback | None = None,
) -> VideoTracks:
    """Decode a clip, run ``backend`` on each frame with a picture, and return canonical tracks.

    Timestamps are the frames' real presentation times (variable frame rate kept); a frame whose
    timestamp repeats the previous one is dropped. Blank frames (:func:`is_blank`) get no
    keypoints and are marked in :attr:`VideoTracks.blank`.
    """
    info = info or probe(path)
    backend.reset()
    names = tuple(backend.keypoint_names)
    times: list[float] = []
    keypoints: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    scores: list[float] = []
    shifts: list[tuple[float, float]] = []
    blank: list[bool] = []
    prev_small: np.ndarray | None = None
    for frame in iter_frames(path):
        if times and frame.time_s <= times[-1]:
            continue  # duplicate timestamp: keep the first frame
        step = max(1, max(frame.image.shape[:2]) // 160)
        small = grey_thumbnail(frame.image)
        blank.append(is_blank(small))
        # A frame with no picture has no dog: the model is not run on it.
        pose = FramePose.empty(len(names)) if blank[-1] else backend.get_pose(frame.image)
        times.append(frame.time_s)
        keypoints.append(pose.keypoints)
        boxes.append(pose.bbox_xyxy if pose.bbox_xyxy is not None else np.full(4, np.nan, np.float32))
        scores.append(pose.score)
        if prev_small is not None and prev_small.shape == small.shape:
            dx, dy = _camera_shift(prev_small, small)
            shifts.append((dx * step, dy * step))
        prev_small = small
        if progress is not None and info.n_frames:
            progress(min(1.0, len(times) / info.n_frames), f"frame {len(times)} of {info.n_frames}")
    kp = np.stack(keypoints) if keypoints else np.zeros((0, len(names), 3), np.float32)
    ds = from_arrays(
        kp[:, :, :2],
        kp[:, :, 2],
        np.asarray(times),
        names,
        fps=info.fps,
        source_software=getattr(backend, "name", type(backend).__name__),
        source_file=os.path.basename(str(path)),
        frame_size=(info.width, info.height),
    )
    motion = classify_camera_motion(np.asarray(shifts).reshape(-1, 2), info.width)
    ds = log_step(ds, "track_video", backend=getattr(backend, "name", "?"), frames=len(times), camera_motion=motion)
    ds = ds.assign_attrs(blank_frames=int(np.sum(blank)))
    return VideoTracks(
        ds, info, motion, np.stack(boxes) if boxes else np.zeros((0, 4)), np.asarray(scores), np.asarray(blank, bool)
    )
