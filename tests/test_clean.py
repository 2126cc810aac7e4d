from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vision import clean
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.synthetic import generate
from vision.tracks import from_arrays, read_log


def _line(n=60, fps=30.0):
    t = np.arange(n) / fps
    pos = np.zeros((n, len(CANONICAL_KEYPOINTS), 2))
    pos[:, :, 0] = 10 * t[:, None] + np.arange(len(CANONICAL_KEYPOINTS)) + 1
    pos[:, :, 1] = 5.0
    return pos, t


def test_low_confidence_becomes_nan_never_zero():
    pos, t = _line()
    conf = np.full(pos.shape[:2], 0.9)
    conf[10, 3] = 0.1
    ds = clean.drop_low_confidence(from_arrays(pos, conf, t), 0.3)
    assert np.isnan(ds["position"].values[10, :, 3, 0]).all()
    assert not (ds["position"].values == 0).any()


def test_interpolation_is_bounded_by_max_gap():
    pos, t = _line(90)
    pos[10:13, 0] = np.nan  # 3 frames = 0.133 s gap
    pos[40:60, 0] = np.nan  # 20 frames, too long
    ds = clean.interpolate_gaps(from_arrays(pos, None, t), max_gap_s=0.2)
    x = ds["position"].values[:, 0, 0, 0]
    np.testing.assert_allclose(x[10:13], 10 * t[10:13] + 1, atol=1e-4)
    assert np.isnan(x[40:60]).all()


def test_smoothing_is_zero_phase():
    fps = 60.0
    t = np.arange(240) / fps
    pos = np.zeros((t.size, len(CANONICAL_KEYPOINTS), 2))
    pos[:, :, 1] = np.sin(2 * np.pi * 1.0 * t)[:, None]
    noise = np.random.default_rng(0).normal(0, 0.05, pos.shape)
    ds = clean.smooth(from_arrays(pos + noise, None, t, fps=fps), cutoff_hz=6)
    y = ds["position"].values[:, 1, 0, 0]
    lag = np.argmax(np.correlate(y - y.mean(), pos[:, 0, 1], "full")) - (t.size - 1)
    assert lag == 0
    assert np.std(y[30:-30] - pos[30:-30, 0, 1]) < 0.03


def test_smoothing_keeps_gaps():
    pos, t = _line()
    pos[20:30, 5] = np.nan
    ds = clean.smooth(from_arrays(pos, None, t), 6)
    assert np.isnan(ds["position"].values[20:30, :, 5, 0]).all()


def test_swap_repair_undoes_injected_swaps():
    segs = ((2.0, 2.6), (5.1, 5.5), (8.0, 9.3))
    c = generate(swap_segments=segs, jitter_px=1.5, dropout_rate=0.05, seed=4, limp_side="left", limp_severity=0.5)
    ds = clean.drop_low_confidence(c.tracks)
    fixed, report = clean.repair_swaps(ds)
    names = list(ds["keypoint"].values)
    k = names.index("left_hind_paw")
    truth = c.clean_position[:, k]
    err_before = np.hypot(*(ds["position"].values[:, :, k, 0] - truth).T)
    err_after = np.hypot(*(fixed["position"].values[:, :, k, 0] - truth).T)
    assert np.nansum(err_before > 30) > 40
    assert np.nansum(err_after > 30) <= 2
    assert report.frames_swapped["stifle_hock_hind_paw"] == pytest.approx(18 + 12 + 39, abs=3)
    assert read_log(fixed)[-1]["operation"] == "repair_swaps"


def test_no_swaps_in_clean_tracks():
    c = generate(seed=7)
    _, report = clean.repair_swaps(clean.drop_low_confidence(c.tracks))
    assert report.frames_swapped["stifle_hock_hind_paw"] == 0


@settings(max_examples=15, deadline=None)
@given(start=st.floats(0.5, 9.0), length=st.floats(0.2, 2.0), seed=st.integers(0, 1000))
def test_swap_repair_property(start, length, seed):
    """Wherever a swapped stretch falls (also at leg crossings), repair recovers the truth."""
    c = generate(duration_s=12, swap_segments=((start, start + length),), seed=seed, jitter_px=1.0)
    fixed, _ = clean.repair_swaps(clean.drop_low_confidence(c.tracks))
    k = list(c.tracks["keypoint"].values).index("right_hock")
    err = np.hypot(*(fixed["position"].values[:, :, k, 0] - c.clean_position[:, k]).T)
    assert np.nansum(err > 25) <= 2


def test_resample_uniform_for_vfr():
    c = generate(duration_s=3, vfr_jitter=0.4, seed=2)
    out = clean.resample_uniform(c.tracks, fps=30)
    dt = np.diff(out["time"].values)
    assert np.allclose(dt, 1 / 30)


def test_legs_swinging_nearly_together_keep_their_labels():
    """Hind legs a quarter stride apart (as in a gallop) cross often; noise must not exchange whole stretches."""
    rng = np.random.default_rng(0)
    n, omega = 300, 2 * np.pi / 12
    t = np.arange(n)
    points = np.array([[0.0, -20.0], [0.0, -10.0], [0.0, 0.0]])

    def leg(phase: float) -> np.ndarray:
        path = np.stack([3.0 * t + 15 * np.sin(omega * t + phase), 5 * np.maximum(0, np.sin(omega * t + phase))], 1)
        return path[:, None, :] + points[None] + rng.normal(0, 2.0, (n, 3, 2))

    left, right = leg(0.0), leg(np.pi / 4)  # the labels as given are right in every frame
    kept = clean.detect_swaps(left, right)
    flat_prior = clean.detect_swaps(left, right, swap_start_probability=0.5, swap_end_probability=0.5)
    assert kept.sum() <= 3
    assert flat_prior.sum() >= 0.2 * n  # accelerations alone, frame by frame, exchange stretches of noise


def _noisy_legs(noise_px: float, swap: slice | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two hind legs (3 points each) swinging half a stride apart, 30 px noise-free apart at most."""
    rng = np.random.default_rng(seed)
    n, omega = 240, 2 * np.pi / 15
    t = np.arange(n)
    points = np.array([[0.0, -20.0], [0.0, -10.0], [0.0, 0.0]])

    def leg(phase: float) -> np.ndarray:
        path = np.stack([2.0 * t + 15 * np.sin(omega * t + phase), 4 * np.maximum(0, np.sin(omega * t + phase))], 1)
        return path[:, None, :] + points[None] + rng.normal(0, noise_px, (n, 3, 2))

    left, right = leg(0.0), leg(np.pi)
    if swap is not None:
        left[swap], right[swap] = right[swap].copy(), left[swap].copy()
    return left, right


@pytest.mark.parametrize("noise_px", [0.5, 4.0, 8.0])
def test_noise_alone_exchanges_nothing_at_any_scale(noise_px):
    """A small, noisy dog (as in the real gallop clip) or a sharp one: noise alone must not exchange stretches."""
    left, right = _noisy_legs(noise_px=noise_px, swap=None)  # the labels as given are right in every frame
    assert clean.detect_swaps(left, right).sum() <= 2


@settings(max_examples=10, deadline=None)
@given(start=st.integers(20, 150), length=st.integers(8, 60), seed=st.integers(0, 1000))
def test_a_clear_swap_is_still_repaired_in_noisy_tracks(start, length, seed):
    """Measuring the evidence against the track's noise keeps the repair of swaps that stand out of it.

    Both ends of the swap fall where the legs are at least 15 px apart: a swap that starts or ends
    where they cross leaves no trace at that end, and either side of it is as likely.
    """
    omega = 2 * np.pi / 15
    assume(abs(np.sin(omega * start)) >= 0.5 and abs(np.sin(omega * (start + length))) >= 0.5)
    swap = slice(start, start + length)
    left, right = _noisy_legs(noise_px=1.5, swap=swap, seed=seed)
    found = clean.detect_swaps(left, right)
    truth = np.zeros(len(left), bool)
    truth[swap] = True
    assert np.sum(found != truth) <= 4


def test_the_repair_does_not_depend_on_the_image_scale():
    """The same clip filmed closer (every coordinate doubled) is repaired in the same frames."""
    left, right = _noisy_legs(noise_px=1.5, swap=slice(40, 70), seed=3)
    found = clean.detect_swaps(left, right)
    assert found[40:70].all() and found.sum() == 30
    np.testing.assert_array_equal(clean.detect_swaps(2 * left, 2 * right), found)
    np.testing.assert_allclose(clean.swap_noise_px(2 * left, 2 * right), 2 * clean.swap_noise_px(left, right))


def test_the_noise_the_repair_measured_is_in_the_provenance_log():
    """A vet or developer can see why a noisy clip had nothing repaired: its noise (pixels) is logged."""
    calm = clean.swap_noise_px(*_noisy_legs(noise_px=0.2, swap=None))
    noisy = clean.swap_noise_px(*_noisy_legs(noise_px=4.0, swap=None))
    assert calm.shape == noisy.shape == (3,)
    assert np.all(noisy > 5 * calm)
    c = generate(seed=7)
    fixed, _ = clean.repair_swaps(clean.drop_low_confidence(c.tracks))
    entry = read_log(fixed)[-1]
    assert entry["operation"] == "repair_swaps"
    logged = entry["parameters"]
    assert set(logged["noise_px"]) == set(logged["frames_swapped"])
    assert [len(v) for v in logged["noise_px"].values()] == [3, 3, 2]


@settings(max_examples=15, deadline=None)
@given(start=st.integers(10, 200), length=st.integers(1, 40), noise=st.floats(0.2, 6.0), seed=st.integers(0, 1000))
def test_naming_the_legs_the_other_way_round_finds_the_same_frames(start, length, noise, seed):
    """Which leg is called left must not matter: exchanging the inputs exchanges nothing else."""
    left, right = _noisy_legs(noise_px=noise, swap=slice(start, start + length), seed=seed)
    np.testing.assert_array_equal(clean.detect_swaps(right, left), clean.detect_swaps(left, right))


def test_exchanging_labels_moves_positions_and_confidences_and_is_logged():
    c = generate(duration_s=2, seed=3)
    names = list(c.tracks["keypoint"].values)
    left, right = names.index("left_hock"), names.index("right_hock")
    frames = np.zeros(c.tracks.sizes["time"], bool)
    frames[5:9] = True
    out = clean.exchange_labels(c.tracks, {"stifle_hock_hind_paw": frames})
    pos, conf = c.tracks["position"].values, c.tracks["confidence"].values
    np.testing.assert_array_equal(out["position"].values[5:9, :, left], pos[5:9, :, right])
    np.testing.assert_array_equal(out["confidence"].values[5:9, right], conf[5:9, left])
    np.testing.assert_array_equal(out["position"].values[~frames], pos[~frames])
    assert read_log(out)[-1]["parameters"]["frames_exchanged"] == {"stifle_hock_hind_paw": 4}
    assert read_log(c.tracks) != read_log(out)  # the input is untouched


def _front_back_labels(ds, direction: int):
    """The hind chain relabelled by place, not by leg: "left" is always the paw ahead (as some models label it)."""
    out = ds.copy(deep=True)
    names = list(ds["keypoint"].values)
    pos, conf = out["position"].values, out["confidence"].values
    behind = direction * (pos[:, 0, names.index("left_hind_paw"), 0] - pos[:, 0, names.index("right_hind_paw"), 0]) < 0
    for part in ("stifle", "hock", "hind_paw"):
        a, b = names.index(f"left_{part}"), names.index(f"right_{part}")
        pos[behind, :, a, 0], pos[behind, :, b, 0] = pos[behind, :, b, 0].copy(), pos[behind, :, a, 0].copy()
        conf[behind, a, 0], conf[behind, b, 0] = conf[behind, b, 0].copy(), conf[behind, a, 0].copy()
    return out


def _analysed_front_back(direction: int, limp: str | None) -> dict:
    """The report's metrics of a synthetic walk whose hind chain is labelled front/back (see above)."""
    from vision.analysis import analyze_tracks

    c = generate(seed=2, jitter_px=1.5, direction=direction, limp_side=limp, limp_severity=0.5 if limp else 0.0)
    relabelled = _front_back_labels(c.tracks, direction)
    names = list(c.tracks["keypoint"].values)
    ahead = direction * (
        relabelled["position"].values[:, 0, names.index("left_hind_paw"), 0]
        - relabelled["position"].values[:, 0, names.index("right_hind_paw"), 0]
    )
    assert np.mean(ahead >= 0) == 1.0  # the labels as given say nothing about which leg is which
    return analyze_tracks(relabelled).report["metrics"]


@pytest.mark.parametrize("direction,limp", [(1, None), (-1, None), (1, "left"), (-1, "right")])
def test_hind_legs_labelled_front_and_back_are_followed_through_the_crossings(direction, limp):
    """Labels that follow the paws' order (the front paw always "left") jump legs at every crossing.

    On clean synthetic tracks the swap repair follows each leg through the crossings: the hind
    phase comes back to a walk's 0.5 (on the relabelled track each "leg" strikes at both legs'
    strikes) and a limp is still found. On the real owner clips it does not (their paws jump up
    to a fifth of a body length between frames, which hides the crossings).
    """
    metrics = _analysed_front_back(direction, limp)
    assert metrics["bunny_hop"]["hind_phase"] == pytest.approx(0.5, abs=0.08)
    assert (metrics["symmetry"]["weaker_side"] is None) == (limp is None)


@pytest.mark.xfail(
    strict=True,
    reason="known gap: with front/back labels the global left/right is kept from the labels' majority, which is "
    "arbitrary; the near/far cue (near leg seen more confidently) is not used yet",
)
@pytest.mark.parametrize("direction", [1, -1])
def test_a_limp_on_front_back_labels_is_named_on_its_side(direction):
    """The side must come from the dog, not from how the model ordered the labels."""
    assert _analysed_front_back(direction, "right")["symmetry"]["weaker_side"] == "right"
