from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gait.conftest import prepared
from vision.gait.events import GaitEvents, Stride
from vision.gait.wobble import ataxia_metrics, tremor_metrics


@settings(max_examples=8, deadline=None)
@given(hz=st.floats(3.5, 13.5), seed=st.integers(0, 5000))
def test_tremor_frequency_within_half_hertz(hz, seed):
    _, raw, _, ev = prepared(tremor_hz=hz, tremor_amp_bl=0.015, seed=seed, jitter_px=1.0)
    m = tremor_metrics(raw, ev)
    assert m["flag"] is True
    assert m["tremor_hz"] == pytest.approx(hz, abs=0.5)


def test_no_tremor_in_a_steady_dog():
    for seed in range(5):
        _, raw, _, ev = prepared(seed=seed, jitter_px=2.0)
        m = tremor_metrics(raw, ev)
        assert m["flag"] is False and m["tremor_hz"] is None, seed


def test_frame_rate_note_for_orthostatic_tremor():
    _, raw, _, ev = prepared(seed=1)
    m = tremor_metrics(raw, ev)
    assert m["can_resolve_orthostatic"] is False and "60 fps" in m["note"]  # 30 fps: Nyquist 15 Hz
    _, raw60, _, ev60 = prepared(seed=1, fps=60)
    m60 = tremor_metrics(raw60, ev60)
    assert m60["can_resolve_orthostatic"] is True and m60["note"] is None


def test_high_tremor_at_60_fps():
    _, raw, _, ev = prepared(tremor_hz=18, fps=60, seed=2)
    m = tremor_metrics(raw, ev)
    assert m["tremor_hz"] == pytest.approx(18, abs=0.5)


def _true_pooled_cv(c, duration):
    d = []
    for limb in ("left_hind", "right_hind"):
        s = c.strikes[limb]
        d += list(np.diff(s[(s > 0) & (s < duration)]))
    d = np.asarray(d)
    return 100 * d.std(ddof=1) / d.mean()


@pytest.mark.parametrize("cv", [0.03, 0.2, 0.4])
def test_stride_time_variability_tracks_truth(cv):
    c, _, _, ev = prepared(stride_cv=cv, seed=2, duration_s=20)
    a = ataxia_metrics(ev)
    truth = _true_pooled_cv(c, 20)
    assert 0.6 * truth <= a["stride_time_cv_pct"]["value"] <= 1.2 * truth + 0.5


def _events_with_strides(durations: np.ndarray, excursions: np.ndarray) -> GaitEvents:
    strides: dict[str, list[Stride]] = {"left_hind": [], "right_hind": []}
    t = 0.0
    for k, (d, e) in enumerate(zip(durations, excursions, strict=True)):
        limb = "left_hind" if k % 2 == 0 else "right_hind"
        strides[limb].append(Stride(limb, t, t + d, t + 0.6 * d, float(e), 0.1, 30.0))
        t += 0.5 * d
    return GaitEvents(np.arange(0, t + 1, 1 / 30), np.ones(1), np.ones(1, bool), 200.0, 1.0, strides=strides)


def test_ataxia_flag_only_for_high_variability():
    _, _, _, ev = prepared(stride_cv=0.03, seed=2)
    assert ataxia_metrics(ev)["ataxia_flag"] is False
    rng = np.random.default_rng(0)
    # Strides whose time and length vary by a CV of about 60 %: beyond the normal 20-28 % with room to spare.
    wild = _events_with_strides(rng.uniform(0.3, 1.7, 40), rng.uniform(0.1, 0.9, 40))
    m = ataxia_metrics(wild)
    assert m["ataxia_flag"] is True
    assert m["strides_kept"] == 40


def test_ataxia_is_not_flagged_when_the_interval_reaches_the_normal_range():
    rng = np.random.default_rng(1)
    # A high CV measured on only 8 strides: the interval reaches below 30 %, so no flag.
    few = _events_with_strides(1.0 + 0.35 * rng.standard_normal(8).clip(-2, 2), np.full(8, 0.5))
    m = ataxia_metrics(few)
    assert m["stride_time_cv_pct"]["value"] > 20
    assert m["stride_time_cv_pct"]["ci95"][0] < 30
    assert m["ataxia_flag"] is False
