"""A hind leg held up or barely touching: non-weight-bearing and toe-touching lameness.

A dog that will not bear weight on a hind leg carries that paw above the ground and hardly
swings it: its forward travel relative to the pelvis shrinks and it seldom comes down to the
ground line that the other paws stand on. Side-on, the far paw's ground contact sits a little
higher in the image than the near paw's (perspective), so the clearance rule allows for that.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from vision.gait.events import GaitEvents, near_side
from vision.tracks import keypoint_xy

#: A paw within this height of the ground line (body lengths) is taken to be on the ground.
CONTACT_BL = 0.06
#: Extra height allowed for the far paw's ground contact seen in perspective (body lengths).
FAR_PAW_ALLOWANCE_BL = 0.06
#: The held-up leg travels at most this share of the other hind leg's forward range.
MAX_TRAVEL_RATIO = 0.55
#: ... and is on the ground in at most this share of side-on frames, the other in at least twice as many.
MAX_CONTACT_SHARE = 0.25
MIN_FRAMES = 45


def _robust_range(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(np.percentile(v, 90) - np.percentile(v, 10)) if v.size >= 10 else float("nan")


def held_up_leg(tracks: xr.Dataset, events: GaitEvents, individual: int = 0) -> dict[str, Any]:
    """Is one hind paw carried off the ground for most of the clip, and which.

    Parameters
    ----------
    tracks
        Cleaned, smoothed tracks (pixels), the ones ``events`` were found in.
    events
        Gait events, for the side-on frames, walking direction and body length.

    Returns
    -------
    dict
        ``flag`` (None when it cannot be judged: fewer than ``MIN_FRAMES`` side-on frames with
        both hind paws), ``side`` (``left``/``right`` when flagged), ``contact_share`` and
        ``travel_bl`` per leg (share of side-on frames on the ground; 10–90 % range of forward
        travel relative to the pelvis, body lengths), ``frames`` used and a plain ``reason``.
    """
    L = events.body_length_px
    out: dict[str, Any] = {"flag": None, "side": None, "contact_share": {}, "travel_bl": {}, "frames": 0}
    if not L:
        out["reason"] = "The dog's body was not measured side-on."
        return out
    paws = {s: keypoint_xy(tracks, f"{s}_hind_paw", individual) for s in ("left", "right")}
    fronts = [keypoint_xy(tracks, f"{s}_front_paw", individual)[:, 1] for s in ("left", "right")]
    ys = np.stack([paws["left"][:, 1], paws["right"][:, 1], *fronts])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ground = np.nanmax(ys, axis=0)  # image y grows downwards: the lowest paw stands on the ground
    use = events.lateral & np.isfinite(paws["left"]).all(axis=1) & np.isfinite(paws["right"]).all(axis=1)
    out["frames"] = int(use.sum())
    if use.sum() < MIN_FRAMES:
        out["reason"] = "Both hind paws were seen side-on in too few frames to judge weight bearing."
        return out
    near = [near_side(float(d)) for d in events.direction[use]]
    for side, xy in paws.items():
        clearance = (ground[use] - xy[use, 1]) / L
        allowance = np.array([0.0 if n == side else FAR_PAW_ALLOWANCE_BL for n in near])
        out["contact_share"][side] = round(float(np.mean(clearance <= CONTACT_BL + allowance)), 3)
        out["travel_bl"][side] = round(_robust_range(events.relative.get(f"{side}_hind", np.array([]))[use]), 3)
    c, tr = out["contact_share"], out["travel_bl"]
    for side, other in (("left", "right"), ("right", "left")):
        held = (
            c[side] <= MAX_CONTACT_SHARE
            and c[other] >= 2 * max(c[side], 0.1)
            and np.isfinite(tr[side])
            and np.isfinite(tr[other])
            and tr[side] <= MAX_TRAVEL_RATIO * tr[other]
        )
        if held:
            out.update(flag=True, side=side)
            out["reason"] = (
                f"The {side} hind paw was on the ground in only {100 * c[side]:.0f}% of side-on frames "
                f"(the {other} in {100 * c[other]:.0f}%) and swung {tr[side]:.2f} body lengths against "
                f"{tr[other]:.2f}: the {side} hind leg is held up or barely bears weight."
            )
            return out
    out["flag"] = False
    out["reason"] = "Both hind paws came down to the ground and swung alike."
    return out
