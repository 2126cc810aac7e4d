"""Annotated overlay video: skeleton, hind-paw strikes and the hind-limb phase."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import xarray as xr

from vision.anatomy import SKELETON
from vision.gait.events import GaitEvents
from vision.video import iter_frames, probe, write_video

_LEFT = (255, 140, 0)  # RGB: orange for the dog's left
_RIGHT = (0, 170, 255)  # blue for the right
_MID = (240, 240, 240)


def _colour(name: str) -> tuple[int, int, int]:
    if name.startswith("left_"):
        return _LEFT
    if name.startswith("right_"):
        return _RIGHT
    return _MID


def draw_pose(image: np.ndarray, points: dict[str, tuple[float, float]], thickness: int = 2) -> np.ndarray:
    """Draw the skeleton on a copy of an RGB image; ``points`` maps names to pixel positions."""
    out = image.copy()
    for a, b in SKELETON:
        if a in points and b in points:
            pa, pb = points[a], points[b]
            cv2.line(out, (int(pa[0]), int(pa[1])), (int(pb[0]), int(pb[1])), _colour(b), thickness, cv2.LINE_AA)
    for name, (x, y) in points.items():
        cv2.circle(out, (int(x), int(y)), thickness + 2, _colour(name), -1, cv2.LINE_AA)
    return out


def _label(image: np.ndarray, text: str, org: tuple[int, int], scale: float, colour: tuple[int, int, int]) -> None:
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def overlay_frames(
    video_path: str | os.PathLike[str],
    tracks: xr.Dataset,
    events: GaitEvents | None,
    max_side: int = 960,
    muscle: dict[str, Any] | None = None,
) -> Iterator[np.ndarray]:
    """Yield annotated RGB frames of the clip (downscaled to ``max_side``).

    ``muscle`` is the report's muscle block: its measured thigh widths are drawn
    (yellow) for a moment around each measured frame.
    """
    measures = (muscle or {}).get("measurements", [])
    measure_times = np.array([m["time"] for m in measures]) if measures else np.array([])
    names = [str(k) for k in tracks["keypoint"].values]
    pos = tracks["position"].isel(individual=0).values  # (time, space, keypoint)
    t_tracks = tracks["time"].values
    info = probe(video_path)
    scale = min(1.0, max_side / max(info.width, info.height))
    strikes = {limb: events.strikes.get(limb, np.array([])) for limb in ("left_hind", "right_hind")} if events else {}
    flash = 0.12
    for frame in iter_frames(video_path, max_side=max_side):
        img = frame.image
        i = int(np.clip(np.searchsorted(t_tracks, frame.time_s), 0, len(t_tracks) - 1)) if len(t_tracks) else -1
        points = {}
        if i >= 0:
            for k, n in enumerate(names):
                x, y = pos[i, 0, k], pos[i, 1, k]
                if np.isfinite(x) and np.isfinite(y):
                    points[n] = (x * scale, y * scale)
        img = draw_pose(img, points, thickness=max(1, int(round(2 * img.shape[1] / 640))))
        s = max(0.4, img.shape[1] / 1100)
        y0 = int(28 * s / 0.6)
        for j, (limb, colour) in enumerate((("left_hind", _LEFT), ("right_hind", _RIGHT))):
            times = strikes.get(limb, np.array([]))
            if times.size and np.min(np.abs(times - frame.time_s)) < flash:
                paw = points.get(f"{limb.split('_')[0]}_hind_paw")
                if paw:
                    cv2.circle(img, (int(paw[0]), int(paw[1])), int(12 * s / 0.6), colour, 2, cv2.LINE_AA)
                _label(img, f"{limb.replace('_', ' ')} strike", (10, y0 * (j + 2)), s, colour)
        if measure_times.size:
            for m in np.flatnonzero(np.abs(measure_times - frame.time_s) < 0.25):
                (ax, ay), (bx, by) = measures[int(m)]["segment"]
                p0 = (int(ax * scale), int(ay * scale))
                p1 = (int(bx * scale), int(by * scale))
                cv2.line(img, p0, p1, (255, 230, 0), max(2, int(3 * s)), cv2.LINE_AA)
                _label(img, "thigh", (p1[0] + 4, p1[1]), 0.8 * s, (255, 230, 0))
        lh = strikes.get("left_hind", np.array([]))
        if lh.size >= 2 and lh[0] <= frame.time_s <= lh[-1]:
            k = int(np.searchsorted(lh, frame.time_s, side="right")) - 1
            k = min(k, lh.size - 2)
            phase = (frame.time_s - lh[k]) / (lh[k + 1] - lh[k])
            _label(img, f"left-hind stride phase {phase:0.2f}", (10, y0), s, _MID)
        yield img


def render_overlay(
    video_path: str | os.PathLike[str],
    tracks: xr.Dataset,
    events: GaitEvents | None,
    out_path: str | os.PathLike[str],
    max_side: int = 960,
    muscle: dict[str, Any] | None = None,
) -> Path:
    """Write the annotated overlay as a browser-playable H.264 MP4."""
    info = probe(video_path)
    return write_video(out_path, overlay_frames(video_path, tracks, events, max_side, muscle), info.fps)
