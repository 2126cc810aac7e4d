import cv2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vision.model import geometry as geo


def test_cell_conversion_round_trip():
    xy = np.array([[0.0, 0.0], [13.7, 101.2]], np.float32)
    np.testing.assert_allclose(geo.from_cells(geo.to_cells(xy)), xy, atol=1e-5)
    # a pixel's centre lies at the centre of its cell
    np.testing.assert_allclose(geo.to_cells(np.array([[1.5, 5.5]])), [[0.0, 1.0]])


@given(
    st.floats(0, 500),
    st.floats(0, 500),
    st.floats(4, 400),
    st.floats(4, 400),
    st.sampled_from([160, 192, 224]),
)
def test_crop_matrix_centres_box_with_padding(x0, y0, w, h, size):
    mat = geo.crop_matrix(np.array([x0, y0, x0 + w, y0 + h]), size)
    centre = geo.apply_affine(np.array([[x0 + w / 2, y0 + h / 2]]), mat)[0]
    np.testing.assert_allclose(centre, [size / 2, size / 2], atol=1e-3 * size)
    # the longer box side spans 1 / CROP_PAD of the crop
    corners = geo.apply_affine(np.array([[x0, y0], [x0 + w, y0 + h]]), mat)
    span = np.abs(corners[1] - corners[0]).max()
    assert span == pytest.approx(size / geo.CROP_PAD, rel=1e-4)


@given(
    st.floats(0, 500),
    st.floats(0, 500),
    st.floats(4, 400),
    st.floats(4, 400),
    st.sampled_from([160, 224]),
)
def test_box_matrix_maps_the_box_onto_the_whole_crop(x0, y0, w, h, size):
    mat = geo.box_matrix(np.array([x0, y0, x0 + w, y0 + h]), size)
    corners = geo.apply_affine(np.array([[x0, y0], [x0 + w, y0 + h]]), mat)
    np.testing.assert_allclose(corners, [[0, 0], [size, size]], atol=1e-3 * size)


def test_verifier_box_crop_shows_the_box_and_the_square_crop_its_neighbours():
    """A tall box (a person) beside a dog: the padded square takes in the dog, the box crop does not."""
    img = np.zeros((200, 300, 3), np.uint8)
    img[40:160, 100:160] = 255  # the box's content
    img[100:160, 170:260] = (255, 0, 0)  # a neighbour to the right
    box = np.array([100, 40, 160, 160], np.float32)
    own = geo.verifier_crop(img, box, 64, "box")
    assert own.shape == (64, 64, 3) and (own[2:-2, 2:-2] == 255).all()
    square = geo.verifier_crop(img, box, 64, "square")
    red = (square[..., 0] > 200) & (square[..., 1] < 50)
    assert red.mean() > 0.05 and not ((own[..., 0] > 200) & (own[..., 1] < 50)).any()
    with pytest.raises(ValueError, match="unknown verifier crop 'wide'"):
        geo.verifier_crop(img, box, 64, "wide")


def test_flipped_crop_mirrors_the_plain_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    box = np.array([30, 20, 170, 100], np.float32)
    plain = geo.warp_square(img, geo.crop_matrix(box, 64), 64)
    flipped = geo.warp_square(img, geo.crop_matrix(box, 64, flip=True), 64)
    # Mirrored about x = 0 (not size - 1), so compare away from the border column. OpenCV's fixed-point
    # bilinear weights round differently for a mirrored sample position: up to 1 grey level (OpenCV 5.1).
    diff = np.abs(flipped[:, 1:].astype(int) - plain[:, ::-1][:, :-1].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    shifted = np.abs(flipped[:, 2:].astype(int) - plain[:, ::-1][:, :-2].astype(int))
    assert (shifted == 0).mean() < 0.5  # a crop one column off is not a mirror


def test_warp_square_pads_grey_outside_the_image():
    img = np.zeros((50, 50, 3), np.uint8)
    crop = geo.warp_square(img, geo.crop_matrix(np.array([0, 0, 50, 50]), 80), 80)
    assert crop.shape == (80, 80, 3)
    assert (crop[0, 0] == geo.PAD_VALUE).all() and (crop[40, 40] == 0).all()


@pytest.mark.parametrize(("h", "w"), [(720, 1280), (1920, 1080), (100, 37), (256, 256)])
def test_letterbox_keeps_aspect_and_maps_back(h, w):
    img = np.zeros((h, w, 3), np.uint8)
    cv2.rectangle(img, (w // 4, h // 4), (w // 2, h // 2), (255, 255, 255), -1)
    canvas, (sx, sy) = geo.letterbox(img, 256)
    assert canvas.shape[0] % 32 == 0 and canvas.shape[1] % 32 == 0 and max(canvas.shape[:2]) == 256
    assert sx == pytest.approx(sy, rel=0.02)
    ys, xs = np.nonzero(canvas[..., 0] > 128)
    assert xs.min() * sx == pytest.approx(w // 4, abs=2 * sx + 1) and ys.min() * sy == pytest.approx(
        h // 4, abs=2 * sy + 1
    )
    assert (canvas[-1, -1] == geo.PAD_VALUE).all() or canvas.shape[:2] == (round(h / sy), round(w / sx))


@given(
    st.lists(st.tuples(st.floats(0, 600), st.floats(0, 400)), min_size=1, max_size=20),
    st.tuples(*[st.floats(0, 0.5)] * 4),
)
def test_box_around_points_holds_the_points_with_margins_in_units_of_extent(points, margins):
    xy = np.array(points, np.float64)
    box = geo.box_around_points(xy, margins, (400, 600, 3))
    extent = max(np.ptp(xy[:, 0]), np.ptp(xy[:, 1]))
    assert box.dtype == np.float32
    assert 0 <= box[0] <= xy[:, 0].min() + 1e-3 and xy[:, 0].max() - 1e-3 <= box[2] <= 600
    assert 0 <= box[1] <= xy[:, 1].min() + 1e-3 and xy[:, 1].max() - 1e-3 <= box[3] <= 400
    want = [
        max(0.0, xy[:, 0].min() - margins[0] * extent),
        max(0.0, xy[:, 1].min() - margins[1] * extent),
        min(600.0, xy[:, 0].max() + margins[2] * extent),
        min(400.0, xy[:, 1].max() + margins[3] * extent),
    ]
    np.testing.assert_allclose(box, want, rtol=1e-5, atol=1e-3)


def test_box_around_points_needs_four_margins():
    with pytest.raises(ValueError, match="left, top, right, bottom"):
        geo.box_around_points(np.zeros((3, 2)), (0.1, 0.1), (10, 10))


def test_box_around_keypoints_uses_only_finite_confident_points():
    kp = np.array([[10, 10, 0.9], [50, 30, 0.9], [30, 60, 0.5], [200, 200, 0.1], [np.nan, 5, 0.9]], np.float32)
    box = geo.box_around_keypoints(kp, (0.0,) * 4, (300, 300, 3), min_confidence=0.5, min_points=3)
    np.testing.assert_allclose(box, [10, 10, 50, 60])  # the unsure and the NaN point are left out
    assert geo.box_around_keypoints(kp, (0.0,) * 4, (300, 300, 3), min_confidence=0.5, min_points=4) is None
