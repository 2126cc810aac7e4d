"""Muscle indices from silhouettes and keypoints, each normalised by body size in the same frame.

Lateral view (per stride, at mid-stance of the near hind leg, so the thigh is
seen at the same phase every time):

- ``thigh_width_index``: depth of the near thigh behind the femur axis (the caudal
  thigh muscles), 60 % of the way from the tail base to the stifle and perpendicular
  to that axis, over the body length (withers to tail base). Only the caudal side is
  measured because, side-on, the front of the thigh merges with the flank in the
  silhouette;
- ``hind_fore_ratio``: that depth over the full width of the near forearm (half-way
  from elbow to carpus, where it stands free of the chest), in the spirit of the
  pelvic/thoracic limb girth ratio of Fox et al. (2023), which is repeatable where
  tape girth is not.

Rear view (dog walking away): left and right thigh widths on the row at mid-thigh
height, from the midline (tail base) outwards; ``thigh_asymmetry`` is their
symmetry index (negative = left thinner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.muscle.silhouette import Silhouette, run_length

_I = {n: i for i, n in enumerate(CANONICAL_KEYPOINTS)}
THIGH_FRACTION = 0.6
FORE_FRACTION = 0.6


@dataclass(frozen=True)
class LateralWidths:
    """Widths measured on one lateral frame, in frame pixels."""

    side: str
    thigh_px: float
    fore_px: float | None
    body_length_px: float
    thigh_segment: tuple[tuple[float, float], tuple[float, float]] | None = None  # frame px, for the overlay

    @property
    def thigh_index(self) -> float:
        """Thigh width over body length."""
        return self.thigh_px / self.body_length_px

    @property
    def hind_fore(self) -> float | None:
        """Thigh width over upper fore-limb width."""
        return self.thigh_px / self.fore_px if self.fore_px else None


def _xy(keypoints: np.ndarray, name: str) -> np.ndarray | None:
    p = keypoints[_I[name], :2]
    return p.astype(np.float64) if np.all(np.isfinite(p)) else None


def _caudal_depth(
    sil: Silhouette, root: np.ndarray, axis: np.ndarray, backward: np.ndarray, body: float
) -> float | None:
    """Foreground depth behind a limb axis at its measuring point (frame pixels), or None if implausible."""
    normal = np.array([-axis[1], axis[0]], dtype=np.float64)
    if normal @ backward < 0:
        normal = -normal
    start = sil.to_crop(root + THIGH_FRACTION * axis)
    limit = 0.4 * body * sil.scale
    depth = run_length(sil.mask, start, normal, max_len=limit) / sil.scale
    if not (0.01 * body < depth < 0.39 * body):  # missed the leg, or ran on into something else
        return None
    return float(depth)


def lateral_widths(sil: Silhouette, keypoints: np.ndarray, side: str) -> LateralWidths | None:
    """Near-side thigh and fore-limb widths on a lateral frame (None when they cannot be measured)."""
    tb, st = _xy(keypoints, "tail_base"), _xy(keypoints, f"{side}_stifle")
    wi = _xy(keypoints, "withers")
    if wi is None:  # conventions without withers (AP-10K): the throat stands in, as in the gait engine
        wi = _xy(keypoints, "throat")
    if tb is None or st is None or wi is None:
        return None
    body = float(np.linalg.norm(wi - tb))
    axis = st - tb
    if body <= 0 or np.linalg.norm(axis) <= 0:
        return None
    backward = tb - wi
    thigh = _caudal_depth(sil, tb, axis, backward, body)
    if thigh is None:
        return None
    fore = None
    el, ca = _xy(keypoints, f"{side}_elbow"), _xy(keypoints, f"{side}_carpus")
    if el is not None and ca is not None and np.linalg.norm(ca - el) > 0:
        fa = ca - el
        start = sil.to_crop(el + 0.5 * fa)
        normal = np.array([-fa[1], fa[0]])
        limit = 0.3 * body * sil.scale
        span = (run_length(sil.mask, start, normal, limit) + run_length(sil.mask, start, -normal, limit)) / sil.scale
        fore = float(span) if 0.01 * body < span < 0.29 * body else None
    normal = np.array([-axis[1], axis[0]], dtype=np.float64)
    normal = (normal if normal @ backward >= 0 else -normal) / np.linalg.norm(normal)
    p0 = tb + THIGH_FRACTION * axis
    p1 = p0 + thigh * normal
    segment = ((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])))
    return LateralWidths(side, float(thigh), fore, body, segment)


def rear_widths(sil: Silhouette, keypoints: np.ndarray) -> tuple[float, float, float] | None:
    """Left and right thigh widths from behind (frame pixels) and the leg length used to scale them."""
    tb = _xy(keypoints, "tail_base")
    ls, rs = _xy(keypoints, "left_stifle"), _xy(keypoints, "right_stifle")
    if tb is None or ls is None or rs is None:
        return None
    paws = [p for p in (_xy(keypoints, "left_hind_paw"), _xy(keypoints, "right_hind_paw")) if p is not None]
    leg = float(np.mean([p[1] for p in paws]) - tb[1]) if paws else float(0.5 * (ls[1] + rs[1]) - tb[1]) * 2
    y = tb[1] + THIGH_FRACTION * (0.5 * (ls[1] + rs[1]) - tb[1])
    centre = sil.to_crop(np.array([tb[0], y]))
    mask = sil.mask
    row = int(round(centre[1]))
    if not (0 <= row < mask.shape[0]) or leg <= 0:
        return None
    line = mask[row]
    c = int(round(np.clip(centre[0], 0, line.size - 1)))
    if not line[c]:
        return None
    left_side = line[:c][::-1]
    right_side = line[c + 1 :]
    # In a rear view the dog's left is on the image left.
    width_l = (np.argmin(left_side) if not left_side.all() else left_side.size) / sil.scale
    width_r = (np.argmin(right_side) if not right_side.all() else right_side.size) / sil.scale
    if min(width_l, width_r) <= 0:
        return None
    return float(width_l), float(width_r), leg
