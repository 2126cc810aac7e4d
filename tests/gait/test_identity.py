"""Do the hind-paw labels follow the legs? Synthetic truth: true labels, labels by place, paws together."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gait.conftest import prepared
from vision import clean
from vision.gait.events import detect_events
from vision.gait.identity import MIN_ORDER_CHANGES_PER_STRIDE, check_hind_labels
from vision.synthetic import generate


def paws_by_place(ds, direction: int):
    """Only the hind paws relabelled by place: "left" is always the paw ahead, stifles and hocks stay true.

    This is what the keypoint model does on real side-on clips (docs/trials.md, trial 19), and the
    swap repair cannot undo it, because the paws then disagree with their own hocks.
    """
    out = ds.copy(deep=True)
    names = list(ds["keypoint"].values)
    a, b = names.index("left_hind_paw"), names.index("right_hind_paw")
    pos, conf = out["position"].values, out["confidence"].values
    behind = direction * (pos[:, 0, a, 0] - pos[:, 0, b, 0]) < 0
    pos[behind, :, a, 0], pos[behind, :, b, 0] = pos[behind, :, b, 0].copy(), pos[behind, :, a, 0].copy()
    conf[behind, a, 0], conf[behind, b, 0] = conf[behind, b, 0].copy(), conf[behind, a, 0].copy()
    return out


def _cleaned(ds):
    ds, _ = clean.repair_swaps(clean.drop_low_confidence(ds))
    sm = clean.smooth(clean.interpolate_gaps(ds))
    return sm, detect_events(sm)


@settings(max_examples=8, deadline=None)
@given(
    phase=st.floats(0.35, 0.65),
    direction=st.sampled_from([1, -1]),
    seed=st.integers(0, 5000),
    jitter=st.floats(0.5, 3.0),
)
def test_labels_that_follow_the_legs_change_order_twice_a_stride(phase, direction, seed, jitter):
    _, _, sm, ev = prepared(hind_phase=phase, direction=direction, seed=seed, jitter_px=jitter)
    check = check_hind_labels(sm, ev)
    assert check.follow_legs is True
    assert check.changes_per_stride == pytest.approx(2.0, abs=0.4)
    assert 0.3 <= check.left_ahead_share <= 0.7


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("limp", [None, "left"])
def test_paws_named_by_place_do_not_follow_the_legs(direction, limp):
    c = generate(seed=3, jitter_px=1.5, direction=direction, limp_side=limp, limp_severity=0.5 if limp else 0.0)
    sm, ev = _cleaned(paws_by_place(c.tracks, direction))
    check = check_hind_labels(sm, ev)
    assert check.follow_legs is False
    assert check.changes_per_stride < MIN_ORDER_CHANGES_PER_STRIDE
    assert check.left_ahead_share > 0.9  # the front paw is always "left"


def test_paws_moving_together_give_no_verdict():
    """A bunny hop keeps the paws side by side: their order is noise, so the check does not judge."""
    _, _, sm, ev = prepared(hind_phase=0.0, seed=4)
    check = check_hind_labels(sm, ev)
    assert check.follow_legs is None
    assert check.apart_share < 0.3


def test_too_short_a_side_on_stretch_gives_no_verdict():
    _, _, sm, ev = prepared(duration_s=2.0, seed=1)
    check = check_hind_labels(sm, ev)
    assert check.strides_seen < 3
    assert check.follow_legs is None


def test_no_stride_period_gives_no_verdict():
    _, _, sm, ev = prepared(seed=1)
    ev.stride_period_s = None
    check = check_hind_labels(sm, ev)
    assert check.follow_legs is None
    assert check.to_dict()["changes_per_stride"] is None


def test_the_verdict_does_not_depend_on_which_label_is_called_left():
    c = generate(seed=5, jitter_px=1.5)
    sm, ev = _cleaned(paws_by_place(c.tracks, 1))
    names = list(sm["keypoint"].values)
    flipped = sm.copy(deep=True)
    a, b = names.index("left_hind_paw"), names.index("right_hind_paw")
    pos = flipped["position"].values
    pos[:, :, [a, b]] = pos[:, :, [b, a]]
    one, other = check_hind_labels(sm, ev), check_hind_labels(flipped, ev)
    assert one.follow_legs == other.follow_legs is False
    assert one.order_changes == other.order_changes
    assert np.isclose(one.left_ahead_share, 1 - other.left_ahead_share)
