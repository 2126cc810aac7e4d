"""Do the hind-paw labels follow the legs? A check of a clip's left/right hind labels.

Scope: whether the tracks' ``left_hind_paw`` and ``right_hind_paw`` name one leg each, judged from
the tracks alone, before any figure that names a side or pairs the two legs is trusted.

At a walk or trot the hind paws pass each other twice per stride: each leg is ahead of the other
(along the walking direction) for part of every stride. Labels that follow the legs therefore
change order about twice per stride. A keypoint model that names the paws by their place (the
front one "left", the back one "right") gives labels that almost never change order however the
legs move; left/right figures and the hind phase computed from them then compare the front paw
with the back one, not one leg with the other (docs/trials.md, trials 19 and 26).

Only frames where the paws are clearly apart count (:data:`MIN_SEPARATION_BL`): near a crossing the
order is noise. Paws that stay together (bunny hopping, a far leg hidden behind the near one)
leave too few such frames for a verdict, and the check answers None rather than False.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import xarray as xr

from vision.gait.events import GaitEvents
from vision.tracks import keypoint_xy

#: Paws further apart than this along the walking direction (body lengths) have a clear order.
MIN_SEPARATION_BL = 0.1
#: Side-on strides with both hind paws tracked needed for a verdict.
MIN_STRIDES_SEEN = 3.0
#: Share of those frames in which the paws must be clearly apart for a verdict.
MIN_APART_SHARE = 0.3
#: Labels that follow the legs change order about twice per stride; fewer than this is a verdict
#: that they do not.
MIN_ORDER_CHANGES_PER_STRIDE = 1.0


@dataclass(frozen=True)
class HindLabelCheck:
    """The verdict on a clip's hind-paw labels.

    Attributes
    ----------
    order_changes
        Times the labelled paws changed order (between clearly-apart frames less than half a
        stride apart).
    strides_seen
        Side-on time with both hind paws tracked, in strides.
    apart_share
        Share of that time in which the paws were clearly apart (0..1), None with no such time.
    left_ahead_share
        Share of the clearly-apart frames in which ``left_hind_paw`` was ahead (0..1; about 0.5
        when the labels follow the legs, near 0 or 1 when they name places), None without any.
    follow_legs
        True when the order changed at least :data:`MIN_ORDER_CHANGES_PER_STRIDE` times per stride,
        False when less, None when the clip gives too little to judge (no stride period, fewer than
        :data:`MIN_STRIDES_SEEN` strides seen, or paws apart in under :data:`MIN_APART_SHARE` of them).
    """

    order_changes: int
    strides_seen: float
    apart_share: float | None
    left_ahead_share: float | None
    follow_legs: bool | None

    @property
    def changes_per_stride(self) -> float | None:
        """Order changes per stride seen (about 2 when the labels follow the legs)."""
        return self.order_changes / self.strides_seen if self.strides_seen > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded), with ``changes_per_stride``."""
        out = asdict(self)
        for key in ("strides_seen", "apart_share", "left_ahead_share"):
            if out[key] is not None:
                out[key] = round(float(out[key]), 3)
        per = self.changes_per_stride
        out["changes_per_stride"] = None if per is None else round(per, 3)
        return out


def check_hind_labels(ds: xr.Dataset, events: GaitEvents, individual: int = 0) -> HindLabelCheck:
    """Judge whether the hind-paw labels of ``ds`` follow the legs (see the module docstring).

    Parameters
    ----------
    ds
        Cleaned tracks (swaps repaired, gaps filled, smoothed): the labels the metrics will use.
    events
        :func:`~vision.gait.events.detect_events` of ``ds``: walking direction, side-on frames,
        body length and stride period.

    Returns
    -------
    HindLabelCheck
    """
    period = events.stride_period_s
    length = events.body_length_px
    if not period or not length or not np.isfinite(length) or length <= 0:
        return HindLabelCheck(0, 0.0, None, None, None)
    t = events.time
    dt = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    ahead = events.direction * (
        keypoint_xy(ds, "left_hind_paw", individual)[:, 0] - keypoint_xy(ds, "right_hind_paw", individual)[:, 0]
    )
    seen = events.lateral & (events.direction != 0) & np.isfinite(ahead)
    strides_seen = float(seen.sum() * dt / period)
    apart = seen & (np.abs(ahead) / length > MIN_SEPARATION_BL)
    if not seen.any():
        return HindLabelCheck(0, strides_seen, None, None, None)
    apart_share = float(apart.sum() / seen.sum())
    frames = np.flatnonzero(apart)
    order = np.sign(ahead[frames])
    close_in_time = np.diff(t[frames]) < 0.5 * period if frames.size > 1 else np.array([], dtype=bool)
    changes = int(np.sum((order[1:] != order[:-1]) & close_in_time))
    left_ahead = float(np.mean(order > 0)) if frames.size else None
    if strides_seen < MIN_STRIDES_SEEN or apart_share < MIN_APART_SHARE:
        return HindLabelCheck(changes, strides_seen, apart_share, left_ahead, None)
    follows = changes / strides_seen >= MIN_ORDER_CHANGES_PER_STRIDE
    return HindLabelCheck(changes, strides_seen, apart_share, left_ahead, bool(follows))
