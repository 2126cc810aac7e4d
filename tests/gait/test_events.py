from __future__ import annotations

import numpy as np
import pytest

from tests.gait.conftest import prepared
from vision.gait.events import classify_gait, phase_within


@pytest.mark.parametrize("direction", [1, -1])
@pytest.mark.parametrize("pan", [True, False])
def test_strikes_and_lift_offs_within_one_frame(direction, pan):
    c, _, _, ev = prepared(direction=direction, pan=pan, duration_s=6 if not pan else 12, seed=5)
    for limb in ("left_hind", "right_hind"):
        truth_s, truth_l = c.strikes[limb], c.lift_offs[limb]
        assert ev.strikes[limb].size >= 4
        assert max(np.min(np.abs(truth_s - s)) for s in ev.strikes[limb]) < 1.0 / 30
        assert max(np.min(np.abs(truth_l - s)) for s in ev.lift_offs[limb]) < 1.0 / 30
    assert set(np.unique(ev.direction)) == {direction}


def test_stride_time_and_duty_factor():
    c, _, _, ev = prepared(stride_hz=1.25, duty_factor=0.6, seed=2)
    strides = ev.strides["left_hind"]
    assert np.median([s.duration for s in strides]) == pytest.approx(0.8, abs=0.03)
    assert np.median([s.duty_factor for s in strides]) == pytest.approx(0.6, abs=0.04)


def test_phase_within():
    ref = np.array([0.0, 1.0, 2.0, 3.0])
    other = np.array([0.5, 1.25, 2.95])
    np.testing.assert_allclose(phase_within(ref, other), [0.5, 0.25, 0.95])


@pytest.mark.parametrize(
    "duty,hind,front,expected",
    [
        (0.62, 0.5, 0.5, "walk"),
        (0.45, 0.5, 0.5, "trot"),
        (0.25, 0.05, 0.1, "gallop"),
        (0.6, 0.02, 0.5, "walk"),
        # front paws read together at a walking stance (both placed on the near paw): not a gallop
        (0.6, 0.02, 0.02, "walk"),
    ],
)
def test_classify_gait(duty, hind, front, expected):
    assert classify_gait(duty, hind, front) == expected
