"""Hind-limb symmetry: per-stride symmetry indices and pelvic MinDiff/MaxDiff.

Sign convention throughout: a positive *weakness* value means the right hind is
the weaker (it bears weight for less time, travels less, or the pelvis drops less
while it is loaded); negative means the left hind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from vision.gait.events import GaitEvents, Stride
from vision.gait.stats import Estimate, empty, estimate, symmetry_index
from vision.tracks import keypoint_xy


@dataclass(frozen=True)
class StridePair:
    """A left-hind stride and the right-hind stride that starts within it."""

    left: Stride
    right: Stride


def pair_strides(events: GaitEvents) -> list[StridePair]:
    """Pair each left-hind stride with the right-hind stride whose strike falls inside it."""
    pairs: list[StridePair] = []
    rights = events.strides.get("right_hind", [])
    for ls in events.strides.get("left_hind", []):
        inside = [r for r in rights if ls.strike <= r.strike < ls.next_strike]
        if inside:
            pairs.append(StridePair(ls, inside[0]))
    return pairs


def pelvis_height(y: np.ndarray, t: np.ndarray, period_s: float, L: float) -> np.ndarray:
    """Pelvis height (up positive, body lengths) minus its one-stride moving mean.

    A moving mean over exactly one stride is flat for a periodic signal, so this
    removes camera tilt and slopes without favouring either hind stance.
    """
    h = -np.asarray(y, dtype=np.float64) / L
    ok = np.isfinite(h)
    if ok.sum() < 3 or period_s <= 0:
        return np.full(h.shape, np.nan)
    filled = np.interp(t, t[ok], h[ok])
    dt = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    w = max(1, int(round(period_s / dt)))
    kernel = np.ones(w) / w
    trend = np.convolve(np.pad(filled, (w // 2, w - 1 - w // 2), mode="edge"), kernel, mode="valid")
    return np.where(ok, h - trend, np.nan)


def pelvic_differences(
    ds: xr.Dataset, events: GaitEvents, pairs: list[StridePair], individual: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-stride pelvic MinDiff and MaxDiff (percent of body length, tail base as pelvis).

    MinDiff = min height in right-hind stance - min height in left-hind stance;
    MaxDiff = max height after left-hind mid-stance - max after right-hind mid-stance
    (Rhodin et al. 2017). Positive values point to the right hind.
    """
    t = events.time
    y = keypoint_xy(ds, "tail_base", individual)[:, 1]
    L = events.body_length_px
    mins, maxs = [], []
    period = events.stride_period_s or float(np.median([p.left.duration for p in pairs]))
    height = pelvis_height(y, t, period, L)

    def window(a: float, b: float) -> np.ndarray:
        w = height[(t >= a) & (t <= b)]
        return w[np.isfinite(w)]

    for p in pairs:
        lmin = window(p.left.strike, p.left.lift_off)
        rmin = window(p.right.strike, p.right.lift_off)
        mid_l = 0.5 * (p.left.strike + p.left.lift_off)
        mid_r = 0.5 * (p.right.strike + p.right.lift_off)
        after_l = window(mid_l, mid_r)
        after_r = window(mid_r, mid_l + p.left.duration)
        mins.append(100 * (rmin.min() - lmin.min()) if lmin.size and rmin.size else np.nan)
        maxs.append(100 * (after_l.max() - after_r.max()) if after_l.size and after_r.size else np.nan)
    return np.asarray(mins), np.asarray(maxs)


def symmetry_metrics(ds: xr.Dataset, events: GaitEvents, individual: int = 0) -> dict[str, Any]:
    """Symmetry block of the report.

    Returns a dict with per-variable SI estimates (``stance_time_si``,
    ``excursion_si``, ``paw_lift_si``, ``hock_rom_si``; SI > 0 means the right value
    is larger), pelvic ``min_diff_pct_bl`` / ``max_diff_pct_bl``, the combined
    signed ``weakness_pct`` (positive = right weaker), and the summary
    ``hind_asymmetry_pct`` (>= 0) and ``weaker_side``.
    """
    pairs = pair_strides(events)
    if not pairs:
        return {
            "hind_asymmetry_pct": None,
            "weaker_side": None,
            "n_stride_pairs": 0,
            "weakness_pct": empty("%").to_dict(),
        }
    left = {
        "stance": np.array([p.left.stance for p in pairs]),
        "excursion": np.array([p.left.excursion_bl for p in pairs]),
        "lift": np.array([p.left.paw_lift_bl for p in pairs]),
        "rom": np.array([p.left.hock_rom_deg for p in pairs]),
    }
    right = {
        "stance": np.array([p.right.stance for p in pairs]),
        "excursion": np.array([p.right.excursion_bl for p in pairs]),
        "lift": np.array([p.right.paw_lift_bl for p in pairs]),
        "rom": np.array([p.right.hock_rom_deg for p in pairs]),
    }
    si = {k: symmetry_index(right[k], left[k]) for k in left}
    weakness = -0.5 * (si["stance"] + si["excursion"])
    min_diff, max_diff = pelvic_differences(ds, events, pairs, individual)
    w = estimate(weakness, "%")
    side = weaker_side(w)
    return {
        "hind_asymmetry_pct": None if w.value is None else round(abs(w.value), 3),
        "weaker_side": side,
        "weakness_pct": w.to_dict(),
        "stance_time_si": estimate(si["stance"], "%").to_dict(),
        "excursion_si": estimate(si["excursion"], "%").to_dict(),
        "paw_lift_si": estimate(si["lift"], "%").to_dict(),
        "hock_rom_si": estimate(si["rom"], "%").to_dict(),
        "pelvis_min_diff_pct_bl": estimate(min_diff, "% body length").to_dict(),
        "pelvis_max_diff_pct_bl": estimate(max_diff, "% body length").to_dict(),
        "n_stride_pairs": len(pairs),
        "stride_times": {
            "left": [round(p.left.strike, 4) for p in pairs],
            "right": [round(p.right.strike, 4) for p in pairs],
        },
    }


def weaker_side(weakness: Estimate) -> str | None:
    """``left`` or ``right`` when the 95 % interval of the signed weakness excludes zero, else None."""
    if weakness.ci95 is None:
        return None
    lo, hi = weakness.ci95
    if lo > 0:
        return "right"
    if hi < 0:
        return "left"
    return None
