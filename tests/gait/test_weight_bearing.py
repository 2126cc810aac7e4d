from __future__ import annotations

import numpy as np
import pytest

from tests.gait.conftest import prepared
from vision import clean
from vision.gait.events import detect_events
from vision.gait.weight_bearing import held_up_leg


def _holding_up(side: str, direction: int, seed: int = 3):
    """A synthetic walk in which one hind paw is carried under the body, 0.2 body lengths up."""
    c, _, _, _ = prepared(seed=seed, direction=direction, jitter_px=1.0)
    ds = c.tracks.copy(deep=True)
    names = list(ds["keypoint"].values)
    pos = ds["position"].values
    L = c.spec.body_length_px
    tail = pos[:, :, names.index("tail_base"), :]
    other = pos[:, :, names.index(f"{'right' if side == 'left' else 'left'}_hind_paw"), :]
    t = ds["time"].values
    for part, up in (("hind_paw", 0.2), ("hock", 0.35), ("stifle", 0.55)):
        i = names.index(f"{side}_{part}")
        pos[:, 0, i, :] = tail[:, 0] + direction * (0.15 * L + 0.02 * L * np.sin(2 * np.pi * 1.1 * t))[:, None]
        pos[:, 1, i, :] = np.nanmax(other[:, 1]) - up * L
    sm = clean.smooth(clean.interpolate_gaps(clean.drop_low_confidence(ds)))
    return sm, detect_events(sm)


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("side", ["left", "right"])
def test_held_up_leg_is_found_and_named(side, direction):
    sm, ev = _holding_up(side, direction)
    m = held_up_leg(sm, ev)
    assert m["flag"] is True
    assert m["side"] == side
    assert side in m["reason"]


@pytest.mark.parametrize("direction", [1, -1])
def test_sound_walk_bears_weight_on_both(direction):
    _, _, sm, ev = prepared(seed=2, direction=direction)
    m = held_up_leg(sm, ev)
    assert m["flag"] is False
    assert min(m["contact_share"].values()) > 0.3


def test_a_limp_is_not_a_held_up_leg():
    _, _, sm, ev = prepared(seed=2, limp_side="left", limp_severity=0.5)
    assert held_up_leg(sm, ev)["flag"] is False


def test_too_few_frames_is_not_judged():
    _, _, sm, ev = prepared(seed=2, duration_s=1.2)
    m = held_up_leg(sm, ev)
    assert m["flag"] is None
    assert m["reason"]
