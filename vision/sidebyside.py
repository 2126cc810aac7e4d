"""Two clips side by side, played in step: aligned on the left-hind stride phase, not only on time.

Both clips are shown in panels of one size (each scaled to fit and centred on black), each under a
label bar of its own, so the label never covers the overlay's text. Output time follows clip A. For
each output frame, A's left-hind stride k and phase within it are found, and B is shown at the same
phase of its own stride k, so both dogs strike with the left hind at the same moment even when they
walk at different cadences.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vision.video import iter_frames, probe, write_video


def phase_aligned_times(strikes_a: np.ndarray, strikes_b: np.ndarray, times_a: np.ndarray) -> np.ndarray:
    """For each time of clip A, the time in clip B at the same stride number and phase.

    Parameters
    ----------
    strikes_a, strikes_b
        Left-hind strike times (s) of each clip, increasing.
    times_a
        Output times on A's clock, shape ``(n,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``; times in B (NaN outside the strides both clips have).
    """
    out = np.full(times_a.shape, np.nan)
    n = min(len(strikes_a), len(strikes_b))
    if n < 2:
        return out
    a, b = np.asarray(strikes_a[:n]), np.asarray(strikes_b[:n])
    k = np.searchsorted(a, times_a, side="right") - 1
    ok = (k >= 0) & (k < n - 1)
    kk = k[ok]
    phase = (times_a[ok] - a[kk]) / (a[kk + 1] - a[kk])
    out[ok] = b[kk] + phase * (b[kk + 1] - b[kk])
    return out


def _frames_with_times(path: str | os.PathLike[str], max_side: int) -> tuple[list[np.ndarray], np.ndarray]:
    frames, times = [], []
    for f in iter_frames(path, max_side=max_side):
        frames.append(f.image)
        times.append(f.time_s)
    return frames, np.asarray(times)


LABEL_BAR_PX = 32


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` scaled to fit inside ``height`` x ``width`` (aspect kept) and centred on black."""
    scale = min(height / img.shape[0], width / img.shape[1])
    h, w = max(2, int(round(img.shape[0] * scale))), max(2, int(round(img.shape[1] * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - h) // 2, (width - w) // 2
    canvas[top : top + h, left : left + w] = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
    return canvas


def _panel(img: np.ndarray, label: str, height: int, width: int) -> np.ndarray:
    """A label bar of :data:`LABEL_BAR_PX` above the picture fitted into the rest of ``height``."""
    bar = np.full((LABEL_BAR_PX, width, 3), 40, np.uint8)
    cv2.putText(bar, label, (10, LABEL_BAR_PX - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([bar, _fit(img, height - LABEL_BAR_PX, width)], axis=0)


def render_side_by_side(
    video_a: str | os.PathLike[str],
    strikes_a: Sequence[float] | np.ndarray,
    video_b: str | os.PathLike[str],
    strikes_b: Sequence[float] | np.ndarray,
    out_path: str | os.PathLike[str],
    *,
    labels: tuple[str, str] = ("before", "after"),
    height: int = 360,
) -> Path:
    """Write an H.264 MP4 with A and B side by side, in step on the left-hind stride phase.

    The output is ``height`` pixels high (label bars included); both panels have the width of the
    wider clip at that height. Falls back to plain time alignment (both from their first strike)
    when a clip has fewer than two strides.
    """
    fa, ta = _frames_with_times(video_a, 2 * height)
    fb, tb = _frames_with_times(video_b, 2 * height)
    if not fa or not fb:
        raise ValueError("a clip has no frames")
    fps = probe(video_a).fps
    picture_h = height - LABEL_BAR_PX
    width = max(int(round(f[0].shape[1] * picture_h / f[0].shape[0])) for f in (fa, fb))
    width += width % 2
    if len(strikes_a) >= 2 and len(strikes_b) >= 2:
        start, stop = strikes_a[0], strikes_a[min(len(strikes_a), len(strikes_b)) - 1]
        out_t = np.arange(start, stop, 1.0 / fps)
        tb_aligned = phase_aligned_times(np.asarray(strikes_a), np.asarray(strikes_b), out_t)
    else:
        n = min(len(ta), len(tb))
        out_t, tb_aligned = ta[:n], tb[:n]

    def frames():
        for t_a, t_b in zip(out_t, tb_aligned, strict=True):
            ia = int(np.clip(np.searchsorted(ta, t_a), 0, len(fa) - 1))
            ib = int(np.clip(np.searchsorted(tb, t_b), 0, len(fb) - 1)) if np.isfinite(t_b) else len(fb) - 1
            left = _panel(fa[ia], labels[0], height, width)
            right = _panel(fb[ib], labels[1], height, width)
            yield np.concatenate([left, np.zeros((height, 6, 3), np.uint8), right], axis=1)

    return write_video(out_path, frames(), fps)
