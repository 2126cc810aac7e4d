import numpy as np
import pytest

pytest.importorskip("torch", reason="training tests need torch (the train extra)")

from hindsight_training import dataset as ds  # noqa: E402
from vision.anatomy import ANIMALPOSE_TO_CANONICAL, CANONICAL_KEYPOINTS, symmetric_pairs  # noqa: E402
from vision.model import geometry as geo  # noqa: E402

IDX = {n: i for i, n in enumerate(CANONICAL_KEYPOINTS)}


def _keypoints() -> np.ndarray:
    rng = np.random.default_rng(0)
    kps = np.zeros((20, 3), np.float32)
    kps[:, 0] = rng.uniform(10, 90, 20)
    kps[:, 1] = rng.uniform(10, 60, 20)
    kps[:, 2] = 1
    kps[IDX["right_ear"]] = 0  # one unlabelled point
    return kps


def test_symmetric_pairs_cover_all_left_right_names():
    pairs = symmetric_pairs()
    assert len(pairs) == 8
    for a, b in pairs:
        assert CANONICAL_KEYPOINTS[a].replace("left_", "") == CANONICAL_KEYPOINTS[b].replace("right_", "")


def test_hflip_mirrors_x_and_swaps_left_right():
    kps = _keypoints()
    flipped = ds.hflip_keypoints(kps, width=100)
    for name in ("left_hind_paw", "left_stifle", "left_hock", "left_eye", "left_elbow"):
        right = name.replace("left_", "right_")
        # the point labelled left after the flip is the old right point, mirrored
        np.testing.assert_allclose(flipped[IDX[name], 0], 99 - kps[IDX[right], 0])
        np.testing.assert_allclose(flipped[IDX[name], 1], kps[IDX[right], 1])
        np.testing.assert_allclose(flipped[IDX[right], 0], 99 - kps[IDX[name], 0])
    for name in ("nose", "throat", "withers", "tail_base"):
        np.testing.assert_allclose(flipped[IDX[name], 0], 99 - kps[IDX[name], 0])
    # unlabelled right ear -> unlabelled left ear, coordinates untouched
    assert flipped[IDX["left_ear"], 2] == 0
    assert flipped[IDX["right_ear"], 2] == 1
    # flipping twice is the identity
    np.testing.assert_allclose(ds.hflip_keypoints(flipped, 100), kps, atol=1e-4)


def test_flipped_crop_heatmaps_swap_sides():
    """A flipped training crop puts the 'left' heatmap where the mirrored right paw is."""
    img = np.zeros((120, 160, 3), np.uint8)
    kps = np.zeros((20, 3), np.float32)
    kps[IDX["left_hind_paw"]] = (40, 100, 1)
    kps[IDX["right_hind_paw"]] = (120, 100, 1)
    inst = ds.Instance("dog", np.array([20, 20, 140, 110], np.float32), kps)
    plain = geo.crop_matrix(inst.bbox, 160)
    flip = geo.crop_matrix(inst.bbox, 160, flip=True)
    p_right = geo.apply_affine(kps[[IDX["right_hind_paw"]], :2], plain)[0]
    p_right_flipped = geo.apply_affine(kps[[IDX["right_hind_paw"]], :2], flip)[0]
    np.testing.assert_allclose(p_right_flipped[0], 160 - p_right[0], atol=1e-3)

    class FlipRng:  # a generator whose first draw forces the flip, no other augmentation
        def __init__(self):
            self.rng = np.random.default_rng(0)
            self.first = True

        def random(self):
            if self.first:
                self.first = False
                return 0.0
            return 0.99

        def uniform(self, low, high, size=None):
            return (low + high) / 2 if size is None else np.full(size, (low + high) / 2)

        def __getattr__(self, name):
            return getattr(self.rng, name)

    _, hm, w = ds.keypoint_sample(img, inst, 160, FlipRng())
    left_peak = np.unravel_index(hm[IDX["left_hind_paw"]].argmax(), hm.shape[1:])
    right_peak = np.unravel_index(hm[IDX["right_hind_paw"]].argmax(), hm.shape[1:])
    assert w[IDX["left_hind_paw"]] == 1 and w[IDX["right_hind_paw"]] == 1
    # the image's right paw (x=120, right side) is mirrored to the crop's left side and relabelled "left"
    assert left_peak[1] < right_peak[1]
    assert abs(left_peak[1] - geo.to_cells(p_right_flipped)[0]) <= 1.0
    assert abs(left_peak[0] - geo.to_cells(p_right_flipped)[1]) <= 1.0


def test_gaussian_heatmap_peak_and_invisible():
    pts = np.array([[5.0, 7.0, 1.0], [3.0, 3.0, 0.0]], np.float32)
    hm = ds.gaussian_heatmaps(pts, (12, 10), sigma=2.5)
    assert hm.shape == (2, 12, 10)
    assert np.unravel_index(hm[0].argmax(), hm[0].shape) == (7, 5)
    assert hm[0].max() == 1.0
    assert hm[1].max() == 0.0


def test_detection_targets_mark_only_dog_centres():
    img = np.full((200, 300, 3), 90, np.uint8)
    canvas, heat, reg, mask = ds.detection_sample(img, np.array([[50, 40, 250, 160]], np.float32), 256)
    assert canvas.shape == (256, 256, 3)
    assert mask.sum() == 1
    iy, ix = np.argwhere(mask[0])[0]
    assert heat[0, iy, ix] == 1.0
    k = 256 / 300
    assert abs(np.exp(reg[2, iy, ix]) * 4 - 200 * k) < 1.0
    assert abs((ix + reg[0, iy, ix] + 0.5) * 4 - 0.5 - 150 * k) < 1.0
    _, heat0, _, mask0 = ds.detection_sample(img, np.zeros((0, 4), np.float32), 256)
    assert mask0.sum() == 0 and heat0.max() == 0


def test_load_animalpose_maps_to_canonical(tmp_path):
    import json

    names = list(ANIMALPOSE_TO_CANONICAL)
    kps = [[float(i), float(i) + 0.5, 1] for i in range(20)]
    kps[3] = [0, 0, 0]
    (tmp_path / "annotations.json").write_text(
        json.dumps(
            {
                "keypoint_names": names,
                "images": [{"file": "a.jpg", "width": 50, "height": 40, "split": "val", "species": ["dog"]}],
                "annotations": [{"file": "a.jpg", "species": "dog", "bbox_xyxy": [1, 2, 30, 35], "keypoints": kps}],
            }
        )
    )
    (rec,) = ds.load_animalpose(tmp_path)
    inst = rec.instances[0]
    assert inst.keypoints.shape == (20, 3)
    # Animal-Pose "left_back_elbow" (index 7) is the canonical left stifle
    assert inst.keypoints[IDX["left_stifle"], 0] == 7.0
    assert inst.keypoints[IDX["right_hind_paw"], 0] == 16.0
    assert inst.keypoints[IDX["tail_base"], 0] == 19.0
    assert inst.keypoints[IDX["left_ear"], 2] == 0.0


def test_detection_zoom_above_one_cuts_close_ups():
    """zoom > 1 scales the image beyond the letterbox: no padding, boxes grow, dogs cut by the edge are dropped."""
    img = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    box = np.array([[125, 80, 175, 120]], np.float32)  # 50 x 40 px
    full = 50 * 256 / 300 * 2.0  # width at twice the letterbox scale
    widths = []
    for seed in range(30):
        canvas, _, reg, mask = ds.detection_sample(img, box, 256, np.random.default_rng(seed), zoom=(2.0, 2.0))
        assert canvas.shape == (256, 256, 3)
        if mask.sum():
            iy, ix = np.argwhere(mask[0])[0]
            widths.append(float(np.exp(reg[2, iy, ix]) * 4))
    assert widths and max(widths) == pytest.approx(full, abs=1.0)  # seen whole
    assert all(w <= full + 1.0 for w in widths)
    corner = np.array([[10, 10, 60, 50]], np.float32)
    marked = [
        ds.detection_sample(img, corner, 256, np.random.default_rng(seed), zoom=(2.0, 2.0))[3].sum()
        for seed in range(30)
    ]
    assert 0 < sum(marked) < 30  # a dog near the image corner is cut out of some views


def test_score_holdout_is_a_stable_share_of_names_nested_by_percent():
    names = [f"{i:04d}_{i * 7919 % 10007}.jpg" for i in range(5000)]
    held = {p: {n for n in names if ds.in_score_holdout(n, p)} for p in (0, 5, 15)}
    assert held[0] == set()
    assert len(held[15]) / len(names) == pytest.approx(0.15, abs=0.02)
    assert held[5] < held[15]  # a smaller hold-out is part of a larger one
    assert {n for n in names if ds.in_score_holdout(n, 15)} == held[15]  # same answer every call


def test_keypoint_sample_crops_around_the_box_given_not_the_label_box():
    img = np.zeros((200, 300, 3), np.uint8)
    kps = np.zeros((20, 3), np.float32)
    kps[IDX["left_hock"]] = (220.0, 150.0, 1.0)  # the centre of the other box
    inst = ds.Instance("dog", np.array([10, 10, 110, 90], np.float32), kps)
    _, hm_label, w_label = ds.keypoint_sample(img, inst, 160)
    _, hm_box, w_box = ds.keypoint_sample(img, inst, 160, box=np.array([180, 110, 260, 190], np.float32))
    assert w_label[IDX["left_hock"]] == 0  # outside the crop of the label box
    assert w_box[IDX["left_hock"]] == 1
    peak = np.unravel_index(hm_box[IDX["left_hock"]].argmax(), hm_box.shape[1:])
    assert abs(peak[0] - 20) <= 1 and abs(peak[1] - 20) <= 1  # the crop's centre cell (160 px / stride 4 / 2)


@pytest.mark.parametrize("jitter", [ds.LABEL_BOX_JITTER, ds.PIPELINE_BOX_JITTER])
def test_box_jitter_keeps_the_box_centre_within_its_shift(jitter):
    img = np.zeros((200, 300, 3), np.uint8)
    kps = np.zeros((20, 3), np.float32)
    kps[IDX["withers"]] = (150.0, 100.0, 1.0)  # the box centre
    inst = ds.Instance("dog", np.array([100, 60, 200, 140], np.float32), kps)
    offsets = []
    for seed in range(40):
        _, hm, _ = ds.keypoint_sample(img, inst, 160, np.random.default_rng(seed), jitter=jitter)
        peak = np.unravel_index(hm[IDX["withers"]].argmax(), hm.shape[1:])
        offsets.append(np.hypot(peak[0] - 20, peak[1] - 20))
    # the centre moves by up to shift x side on each axis (a rotation turns it, a flip mirrors it),
    # seen at 160 px / (pad x scale x side) px per image pixel, in 4 px cells; +1 for cell rounding
    bound = np.sqrt(2) * jitter.shift * 100 * 160 / (geo.CROP_PAD * jitter.scale[0] * 100) / 4 + 1
    assert max(offsets) <= bound


@pytest.mark.parametrize(("tag", "stored_as"), [(6, "ROTATE_90"), (8, "ROTATE_270"), (3, "ROTATE_180")])
def test_a_phone_photo_stored_sideways_is_read_upright(tmp_path, tag, stored_as):
    """Phones store stills sensor-side up with an EXIF Orientation tag; keypoints are read on the upright image."""
    from PIL import Image

    upright = np.zeros((120, 200, 3), np.uint8)
    upright[:, :, 0] = np.linspace(0, 255, 200, dtype=np.uint8)[None, :]  # red grows to the right
    upright[:40, :60] = (0, 255, 0)  # green block top left
    Image.fromarray(upright).save(tmp_path / "upright.jpg", quality=95)
    stored = Image.fromarray(upright).transpose(getattr(Image.Transpose, stored_as))
    exif = Image.Exif()
    exif[0x0112] = tag  # the rotation that brings the stored pixels upright
    stored.save(tmp_path / "sideways.jpg", quality=95, exif=exif)

    expected = geo.read_rgb(tmp_path / "upright.jpg")
    read = geo.read_rgb(tmp_path / "sideways.jpg")
    assert read.shape == expected.shape == (120, 200, 3)
    assert np.abs(read.astype(int) - expected.astype(int)).mean() < 3
    assert read[:40, :60, 1].mean() > 200 and read[80:, 140:, 1].mean() < 50  # the green block is top left
