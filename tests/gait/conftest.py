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
