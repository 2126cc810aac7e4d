"""Pelvis bob: how often the pelvis rises and falls in one hind stride.

At a walk or trot the two hind legs take turns to carry the pelvis, which dips in each hind
stance: twice per stride. When both hind legs move together (a bound, a gallop, bunny hopping)
it dips once per stride. This does not depend on telling the left hind paw from the right, so it
checks a hind phase near 0 that may come from a far leg that the model did not see apart from the
near one (in a side view the far leg is often hidden behind the near one).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from vision.clean import _runs
from vision.gait.events import GaitEvents
from vision.tracks import keypoint_xy


def once_per_stride_share(tracks: xr.Dataset, events: GaitEvents, individual: int = 0) -> float | None:
    """Share of the pelvis's vertical motion at the stride frequency rather than twice it.

    Parameters
    ----------
    tracks
        Cleaned, smoothed tracks on a uniform grid (the ones events were found in).
    events
        Their gait events; ``stride_period_s`` sets the frequencies looked at.

    Returns
    -------
    float or None
        ``P(f) / (P(f) + P(2 f))`` of the tail base's height over side-on runs of at least two
        strides, ``f = 1 / stride_period_s``: near 0 when the pelvis dips twice per stride
        (legs alternating), near 1 when once (legs together). None when it cannot be measured.
    """
    period = events.stride_period_s
    if not period or not events.body_length_px:
        return None
    fps = float(tracks.attrs.get("fps", 30.0))
    y = keypoint_xy(tracks, "tail_base", individual)[:, 1] / events.body_length_px
    y = np.where(events.lateral, y, np.nan)
    f = 1.0 / period
    power = np.zeros(2)
    used = False
    for a, b in _runs(np.isfinite(y)):
        seg = y[a:b]
        if seg.size < 2 * period * fps:
            continue
        t = np.arange(seg.size) / fps
        seg = seg - np.polyval(np.polyfit(t, seg, 1), t)
        window = np.hanning(seg.size)
        for k, freq in enumerate((f, 2 * f)):
            z = np.sum(seg * window * np.exp(-2j * np.pi * freq * t))
            power[k] += float(np.abs(z) ** 2)
        used = True
    if not used or power.sum() <= 0:
        return None
    return float(power[0] / power.sum())
