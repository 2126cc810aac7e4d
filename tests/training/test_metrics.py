import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training.metrics import (  # noqa: E402
    HIND_LIMB_INDEX,
    box_iou,
    confidence_reliability,
    match_by_iou,
    paired_difference,
    pck_hits,
    pooled_rate,
    reference_agreement,
    standing_side_on,
    summarise_pck,
)
from vision.anatomy import CANONICAL_KEYPOINTS, HIND_LIMB_KEYPOINTS  # noqa: E402


def test_pck_threshold_uses_longer_box_side():
    gt = np.zeros((20, 3))
    gt[:, 2] = 1
    gt[5, 2] = 0  # unlabelled
    bbox = np.array([0, 0, 200, 100])  # longer side 200 -> PCK@0.1 threshold 20 px
    pred = gt[:, :2].copy()
    pred[0, 0] += 19.9  # correct
    pred[1, 0] += 20.1  # wrong
    pred[2] += (12.0, 16.0)  # distance 20 -> correct (<=)
    pred[3] += (9.0, 9.0)  # 12.7 px: correct at 0.1, wrong at 0.05 (10 px)
    hits10 = pck_hits(pred, gt, bbox, 0.1)
    hits05 = pck_hits(pred, gt, bbox, 0.05)
    assert hits10[0] == 1 and hits10[1] == 0 and hits10[2] == 1 and hits10[3] == 1
    assert hits05[3] == 0 and hits05[4] == 1
    assert math.isnan(hits10[5])


def test_summary_pools_labelled_keypoints_and_hind_group():
    hits = np.full((2, 20), np.nan)
    hits[0, HIND_LIMB_INDEX[0]] = 1
    hits[1, HIND_LIMB_INDEX[0]] = 0
    hits[0, HIND_LIMB_INDEX[1]] = 1
    hits[0, CANONICAL_KEYPOINTS.index("nose")] = 0
    s = summarise_pck(hits)
    assert s["per_keypoint"][HIND_LIMB_KEYPOINTS[0]] == pytest.approx(0.5)
    assert s["per_keypoint"][HIND_LIMB_KEYPOINTS[1]] == pytest.approx(1.0)
    assert s["per_keypoint"]["left_eye"] is None
    assert s["hind_limb"] == pytest.approx(2 / 3)
    assert s["all"] == pytest.approx(2 / 4)
    assert s["n_instances"] == 2


def test_hind_limb_group_is_stifles_hocks_paws_tailbase():
    names = {CANONICAL_KEYPOINTS[i] for i in HIND_LIMB_INDEX}
    assert names == {
        "left_stifle",
        "right_stifle",
        "left_hock",
        "right_hock",
        "left_hind_paw",
        "right_hind_paw",
        "tail_base",
    }


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 50 / 150, 0.0])


def test_match_by_iou_is_one_to_one():
    gt = np.array([[0, 0, 10, 10], [100, 100, 150, 150]], np.float32)
    pred = np.array([[101, 99, 149, 151], [1, 1, 10, 10], [0, 0, 9, 11]], np.float32)
    m = match_by_iou(pred, gt)
    assert m[1] == 0
    assert m[0] in (1, 2)
    assert (match_by_iou(np.zeros((0, 4)), gt) == -1).all()


def _reference(t: int = 10) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    names = ("nose", "tail_base", "left_hock", "right_hock")
    ref = np.zeros((t, 4, 2))
    ref[:, 0] = (0.0, 0.0)
    ref[:, 1] = (100.0, 0.0)  # body length 100 px: tolerance 10 px
    ref[:, 2] = (90.0, 50.0)
    ref[:, 3] = (70.0, 50.0)
    return ref, np.ones((t, 4)), names


def test_reference_agreement_counts_frames_within_a_tenth_of_body_length():
    ref, conf, names = _reference()
    pred = ref.copy()
    pred[:4, 2, 0] += 9.0  # left hock: 4 frames off by 0.09 body length (agree) ...
    pred[4:7, 2, 1] += 11.0  # ... 3 by 0.11 (disagree) ...
    pred[7, 2] = np.nan  # ... and one missing (disagrees)
    conf[9, 2] = 0.2  # an unsure reference frame does not count
    out = reference_agreement(pred, ref, conf, names)
    assert out["left_hock"] == {"frames": 9, "share": pytest.approx(5 / 9), "swap_allowed": pytest.approx(5 / 9)}
    assert out["right_hock"]["share"] == 1.0
    assert out["HIND_LIMB"]["frames"] == 9 + 10 + 10  # hocks and tail base pooled
    conf[:, 0] = 0.0  # no confident nose: no body length, nothing counts
    assert reference_agreement(pred, ref, conf, names)["tail_base"] == {
        "frames": 0,
        "share": None,
        "swap_allowed": None,
    }


def test_reference_agreement_swap_allowed_accepts_the_other_leg():
    ref, conf, names = _reference()
    pred = ref.copy()
    pred[:, [2, 3]] = pred[:, [3, 2]]  # hocks swapped in every frame
    out = reference_agreement(pred, ref, conf, names)
    assert out["left_hock"]["share"] == 0.0 and out["left_hock"]["swap_allowed"] == 1.0
    assert out["nose"]["share"] == out["nose"]["swap_allowed"] == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        reference_agreement(pred[:5], ref, conf, names)


def _hits(rng: np.random.Generator, n: int, k: int, rate: float) -> np.ndarray:
    hits = (rng.random((n, k)) < rate).astype(np.float64)
    hits[rng.random((n, k)) < 0.2] = np.nan  # unlabelled
    return hits


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    a = _hits(np.random.default_rng(1), 180, 7, 0.6)
    d = paired_difference(a, a.copy())
    assert d["a"] == d["b"] and d["difference"] == 0.0 and d["low"] == 0.0 and d["high"] == 0.0
    assert d["n_instances"] == 180


def test_paired_difference_finds_a_real_gain_and_not_a_small_one():
    rng = np.random.default_rng(2)
    a = _hits(rng, 180, 7, 0.5)
    labelled = ~np.isnan(a)
    big = np.where(labelled, 1.0, np.nan)  # every labelled point right: +0.5
    d = paired_difference(a, big)
    assert d["difference"] == pytest.approx(1.0 - np.nanmean(a))
    assert 0.0 < d["low"] <= d["difference"] <= d["high"]
    # One animal's points flipped from miss to hit: a gain of well under a point, not resolved.
    small = a.copy()
    row = int(np.flatnonzero((a == 0).sum(axis=1) >= 3)[0])
    small[row] = np.where(labelled[row], 1.0, np.nan)
    d = paired_difference(a, small)
    assert 0.0 < d["difference"] < 0.01 and d["low"] <= 0.0 <= d["high"]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=2, max_value=60))
def test_swapping_the_two_models_negates_the_difference_and_its_interval(seed, n):
    rng = np.random.default_rng(seed)
    a = _hits(rng, n, 5, 0.5)
    b = np.where(np.isnan(a), np.nan, (rng.random(a.shape) < 0.6).astype(np.float64))
    if np.isnan(a).all():
        return
    ab, ba = paired_difference(a, b, n_boot=200), paired_difference(b, a, n_boot=200)
    assert ba["difference"] == pytest.approx(-ab["difference"])
    assert ba["low"] == pytest.approx(-ab["high"]) and ba["high"] == pytest.approx(-ab["low"])
    assert ab["low"] <= ab["high"]


def test_paired_difference_refuses_hits_of_different_animals():
    a = np.array([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="same animals"):
        paired_difference(a, np.array([[1.0, 0.0], [0.0, 1.0]]))  # unlabelled entries differ
    with pytest.raises(ValueError, match="same animals"):
        paired_difference(a, a[:1])
    with pytest.raises(ValueError, match="no labelled"):
        paired_difference(np.full((2, 2), np.nan), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="no labelled"):
        paired_difference(np.zeros(0), np.zeros(0))
    one_column = paired_difference(np.array([0.0, 1.0]), np.array([1.0, 1.0]))  # (N,) is one value per animal
    assert one_column["difference"] == 0.5 and one_column["n_instances"] == 2


def _standing_dog(tilt_deg: float = 0.0, paw_drop: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """A labelled dog seen from the side: back 100 px, paws ``paw_drop`` back lengths below it, its box."""
    kp = np.zeros((len(CANONICAL_KEYPOINTS), 3))
    at = {n: i for i, n in enumerate(CANONICAL_KEYPOINTS)}
    t = np.radians(tilt_deg)
    kp[at["withers"]] = (200.0, 200.0, 2)
    kp[at["tail_base"]] = (200.0 + 100 * np.cos(t), 200.0 + 100 * np.sin(t), 2)
    low = max(kp[at["withers"], 1], kp[at["tail_base"], 1])
    for name, x in (("left_front_paw", 205), ("right_front_paw", 215), ("left_hind_paw", 290), ("right_hind_paw", 280)):
        kp[at[name]] = (x, low + paw_drop * 100, 2)
    kp[at["nose"]] = (150.0, 170.0, 2)
    labelled = kp[kp[:, 2] > 0, :2]
    return kp, np.array([*labelled.min(axis=0), *labelled.max(axis=0)])


def test_a_standing_dog_seen_from_the_side_is_the_filming_setting():
    assert standing_side_on(*_standing_dog())
    assert standing_side_on(*_standing_dog(tilt_deg=20))


@pytest.mark.parametrize(
    "change",
    ["lying", "rearing", "facing the camera", "two paws labelled", "no withers"],
)
def test_dogs_not_standing_side_on_are_left_out(change):
    kp, box = _standing_dog()
    at = {n: i for i, n in enumerate(CANONICAL_KEYPOINTS)}
    if change == "lying":  # paws at the level of the back
        kp, box = _standing_dog(paw_drop=0.1)
    elif change == "rearing":
        kp, box = _standing_dog(tilt_deg=60)
    elif change == "facing the camera":  # the back foreshortened in a tall box
        kp[at["tail_base"], 0] = kp[at["withers"], 0] + 15
        box = np.array([150.0, 150.0, 300.0, 400.0])
    elif change == "two paws labelled":
        kp[[at["left_front_paw"], at["right_hind_paw"]], 2] = 0
    else:
        kp[at["withers"], 2] = 0
    assert not standing_side_on(kp, box)


@settings(max_examples=40, deadline=None)
@given(
    st.floats(min_value=-25, max_value=25),
    st.floats(min_value=0.35, max_value=2.0),
    st.floats(min_value=0.2, max_value=5.0),
    st.floats(min_value=-500, max_value=500),
)
def test_side_on_ignores_which_way_the_dog_faces_where_it_is_and_its_size(tilt, drop, scale, shift):
    kp, box = _standing_dog(tilt_deg=tilt, paw_drop=drop)
    mirrored = kp.copy()
    mirrored[:, 0] = 1000.0 - kp[:, 0]
    mirrored_box = np.array([1000.0 - box[2], box[1], 1000.0 - box[0], box[3]])
    moved = kp.copy()
    moved[:, :2] = kp[:, :2] * scale + shift
    assert standing_side_on(kp, box) is True
    assert standing_side_on(mirrored, mirrored_box) is True
    assert standing_side_on(moved, box * scale + shift) is True


def test_pooled_rate_pools_labelled_points_and_its_interval_narrows_with_more_animals():
    rng = np.random.default_rng(5)
    few, many = _hits(rng, 20, 7, 0.7), _hits(rng, 500, 7, 0.7)
    r_few, r_many = pooled_rate(few), pooled_rate(many)
    assert r_few["rate"] == pytest.approx(np.nanmean(few)) and r_few["n_instances"] == 20
    for r in (r_few, r_many):
        assert r["low"] <= r["rate"] <= r["high"]
    assert r_many["high"] - r_many["low"] < (r_few["high"] - r_few["low"]) / 2
    every = np.where(np.isnan(many), np.nan, 1.0)
    assert pooled_rate(every) == {"rate": 1.0, "low": 1.0, "high": 1.0, "n_instances": 500}
    with pytest.raises(ValueError, match="no labelled"):
        pooled_rate(np.full((3, 2), np.nan))


def test_confidence_reliability_counts_each_labelled_point_in_its_bin():
    conf = np.array([[0.05, 0.15, 0.35, 0.95, 1.0, 0.31]])
    hits = np.array([[0.0, 1.0, 1.0, np.nan, 1.0, 0.0]])  # the 0.95 point is unlabelled: not counted
    r = confidence_reliability(conf, hits, threshold=0.3)
    by_low = {b["low"]: (b["points"], b["rate"]) for b in r["bins"]}
    assert by_low[0.0] == (1, 0.0) and by_low[0.1] == (1, 1.0) and by_low[0.3] == (2, 0.5)
    assert by_low[0.7] == (1, 1.0)  # a confidence of exactly 1 falls in the last bin
    assert by_low[0.5] == (0, None)
    assert r["bins"][-1]["high"] == 1.0
    assert r["kept_share"] == pytest.approx(3 / 5) and r["kept_rate"] == pytest.approx(2 / 3)
    assert r["dropped_rate"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="differ in shape"):
        confidence_reliability(conf, hits[:, :3], threshold=0.3)


@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.05, 0.95),
    st.floats(0.05, 0.95),
)
@settings(max_examples=25)
def test_confidence_reliability_adds_up_and_a_higher_threshold_keeps_fewer(seed, t1, t2):
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0, 1, (12, 6))
    hits = (rng.uniform(0, 1, (12, 6)) < conf).astype(float)
    hits[rng.uniform(0, 1, hits.shape) < 0.2] = np.nan
    low, high = sorted((t1, t2))
    a, b = (confidence_reliability(conf, hits, threshold=t) for t in (low, high))
    labelled = int(np.isfinite(hits).sum())
    assert sum(x["points"] for x in a["bins"]) == labelled
    right = sum(x["points"] * x["rate"] for x in a["bins"] if x["rate"] is not None)
    assert right == pytest.approx(np.nansum(hits))
    kept = a["kept_share"] * labelled
    split = (a["kept_rate"] or 0) * kept + (a["dropped_rate"] or 0) * (labelled - kept)
    assert split == pytest.approx(np.nansum(hits))
    assert b["kept_share"] <= a["kept_share"]
