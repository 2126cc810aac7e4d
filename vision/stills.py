"""Still frames for reports: the annotated video at a hind paw's mid-stance.

A vet reading the PDF sees, for each clip, the frame halfway between a hind paw's strike and its
lift-off (the leg bearing weight), with the skeleton the overlay drew. The time comes from the
stored report's paw events (``metrics.gait.events``), so nothing is re-detected here.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vision.video import iter_frames

#: The hind limbs whose stance phases may be shown.
HIND_LIMBS = ("left_hind", "right_hind")


def mid_stance_time(report: dict[str, Any] | None) -> tuple[float, str] | None:
    """The time (s on the clip's clock) of the middle stance of the best-recorded hind limb, and that limb.

    A stance runs from a paw's strike to its next lift-off. Of the limb with the most complete
    stances, the stance in the middle of the clip is chosen. None when the report holds no complete
    stance (an unscored clip, a pose file without events).
    """
    events = (((report or {}).get("metrics") or {}).get("gait") or {}).get("events") or {}
    best: tuple[int, float, str] | None = None
    for limb in HIND_LIMBS:
        block = events.get(limb) or {}
        strikes = sorted(float(x) for x in block.get("strikes_s") or [] if _finite(x))
        lifts = sorted(float(x) for x in block.get("lift_offs_s") or [] if _finite(x))
        mids = []
        for strike in strikes:
            after = [lift for lift in lifts if lift > strike]
            if after:
                mids.append((strike + after[0]) / 2)
        if mids and (best is None or len(mids) > best[0]):
            best = (len(mids), mids[len(mids) // 2], limb)
    return None if best is None else (best[1], best[2])


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))


def frame_at(path: str | os.PathLike[str], time_s: float, *, max_side: int = 480) -> np.ndarray | None:
    """The RGB frame of a video nearest ``time_s`` (s from its first frame), downscaled; None past its end.

    Returns
    -------
    numpy.ndarray or None
        ``uint8``, shape ``(height, width, 3)``, longer side at most ``max_side`` px.
    """
    best = None
    for frame in iter_frames(path, max_side=max_side):
        if best is not None and abs(frame.time_s - time_s) > abs(best.time_s - time_s):
            break
        best = frame
    if best is None or abs(best.time_s - time_s) > 0.5:
        return None
    return best.image


def mid_stance_png(overlay: str | os.PathLike[str], report: dict[str, Any] | None) -> tuple[bytes, str] | None:
    """A PNG of the annotated video at mid-stance and its caption, or None when there is no stance to show.

    Raises
    ------
    vision.errors.HindsightInputError
        The video cannot be read.
    """
    import cv2

    chosen = mid_stance_time(report)
    if chosen is None:
        return None
    time_s, limb = chosen
    image = frame_at(overlay, time_s)
    if image is None:
        return None
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        return None
    side = limb.replace("_", " ")
    return png.tobytes(), f"{side} paw at mid-stance, {time_s:.1f} s into the clip"
