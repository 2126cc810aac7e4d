from __future__ import annotations

from vision import clean
from vision.gait.events import detect_events
from vision.synthetic import generate


def prepared(**kw):
    """Synthetic clip -> (clip, raw gap-filled tracks, smoothed tracks, events), as the pipeline does it."""
    c = generate(**kw)
    ds = clean.drop_low_confidence(c.tracks)
    ds, _ = clean.repair_swaps(ds)
    raw = clean.interpolate_gaps(ds)
    sm = clean.smooth(raw)
    return c, raw, sm, detect_events(sm)


def out_and_back(duration_s: float = 10.0, **kw):
    """A synthetic dog walking to the right, then back to the left: (smoothed tracks, events)."""
    import xarray as xr

    there = generate(direction=1, duration_s=duration_s, **kw).tracks
    back = generate(direction=-1, duration_s=duration_s, time_offset_s=duration_s + 0.5, **kw).tracks
    both = xr.concat([there, back], dim="time", combine_attrs="override")
    ds = clean.drop_low_confidence(clean.resample_uniform(both))
    ds, _ = clean.repair_swaps(ds)
    sm = clean.smooth(clean.interpolate_gaps(ds))
    return sm, detect_events(sm)
