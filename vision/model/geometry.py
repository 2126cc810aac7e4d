"""Image geometry shared by training and inference of the dog pose networks, and image reading.

Box crops and letterboxed frames must be built the same way when the networks are trained,
validated and run, so the affines, the grey padding and the heatmap-cell convention live here
once. Pure numpy + OpenCV. Coordinates are pixel indices (x right, y down); a 2x3 affine maps
image pixels to crop (or canvas) pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from vision.errors import HindsightInputError

#: Heatmap and detection-map stride of both networks (input pixels per output cell).
STRIDE = 4
#: Crop side = CROP_PAD x the longer box side (inference, and training before jitter).
CROP_PAD = 1.25
#: Grey value of the padding outside the image (crops and letterbox canvases).
PAD_VALUE = 114
#: How the verifier's crop is cut around a candidate box (:func:`verifier_crop`): ``"box"`` (the box
#: itself, stretched to the square input; since model 0.7.2) or ``"square"`` (a square of ``CROP_PAD`` x
#: the longer box side, as the keypoint crops; up to 0.7.1, and any manifest that does not say).
VERIFY_CROPS = ("box", "square")
#: The verifier crop of the models ``export`` writes now, and of the verifier probe's fit.
VERIFY_CROP = "box"


def crop_matrix(
    bbox: np.ndarray,
    size: int,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    rot_deg: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """2x3 float32 affine from image pixels to a square ``size`` crop around a box.

    The crop is centred on the box centre (+ ``shift`` x box size), side ``CROP_PAD * scale`` x the
    longer box side, rotated by ``rot_deg`` and optionally mirrored (the defaults are the inference crop).
    """
    x0, y0, x1, y1 = (float(v) for v in bbox)
    w, h = max(x1 - x0, 2.0), max(y1 - y0, 2.0)
    cx, cy = (x0 + x1) / 2 + shift[0] * w, (y0 + y1) / 2 + shift[1] * h
    k = size / (CROP_PAD * scale * max(w, h))
    a = math.radians(rot_deg)
    lin = k * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]], dtype=np.float64)
    if flip:
        lin = np.diag([-1.0, 1.0]) @ lin
    t = np.array([size / 2, size / 2]) - lin @ np.array([cx, cy])
    return np.hstack([lin, t[:, None]]).astype(np.float32)


def box_matrix(bbox: np.ndarray, size: int) -> np.ndarray:
    """2x3 float32 affine from image pixels to a square ``size`` crop of exactly the box (aspect not kept)."""
    x0, y0, x1, y1 = (float(v) for v in bbox)
    sx, sy = size / max(x1 - x0, 2.0), size / max(y1 - y0, 2.0)
    return np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]], np.float32)


def verifier_crop(image: np.ndarray, bbox: np.ndarray, size: int, mode: str) -> np.ndarray:
    """(size, size, C) crop of a candidate box for the verifier, cut as ``mode`` (one of :data:`VERIFY_CROPS`) says.

    A square crop padded around a person holding a dog shows the dog beside the person's head, and
    the ImageNet verifier then calls the person's box a dog; the box alone shows less of its neighbours.
    """
    if mode not in VERIFY_CROPS:
        raise ValueError(f"unknown verifier crop {mode!r}; expected one of {', '.join(VERIFY_CROPS)}")
    matrix = box_matrix(bbox, size) if mode == "box" else crop_matrix(bbox, size)
    return warp_square(image, matrix, size)


def warp_square(image: np.ndarray, matrix: np.ndarray, size: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """(size, size, C) crop of an image under a 2x3 affine, padded with ``PAD_VALUE`` grey."""
    return cv2.warpAffine(
        image,
        matrix,
        (size, size),
        flags=interpolation,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(PAD_VALUE, PAD_VALUE, PAD_VALUE),
    )


def apply_affine(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to (N, 2) points."""
    return points @ matrix[:, :2].T + matrix[:, 2]


def to_cells(xy: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Pixel coordinates -> heatmap-cell coordinates (pixel-centre convention)."""
    return (xy + 0.5) / stride - 0.5


def from_cells(uv: np.ndarray, stride: int = STRIDE) -> np.ndarray:
    """Heatmap-cell coordinates -> pixel coordinates (inverse of ``to_cells``)."""
    return (uv + 0.5) * stride - 0.5


def letterbox_matrix(width: int, height: int, size: int) -> np.ndarray:
    """2x3 affine that fits an image into a ``size`` canvas (top-left aligned, aspect kept)."""
    k = size / max(width, height)
    return np.array([[k, 0, 0], [0, k, 0]], dtype=np.float32)


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Whole frame for the detector: longer side ``size``, top-left aligned, grey-padded to multiples of 32.

    Returns
    -------
    canvas : np.ndarray
        (H', W', C) uint8, H' and W' multiples of 32.
    scale : tuple of float
        (sx, sy): canvas pixels times these give image pixels.
    """
    h, w = image.shape[:2]
    k = size / max(h, w)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    canvas = np.full((-(-nh // 32) * 32, -(-nw // 32) * 32, image.shape[2]), PAD_VALUE, np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    return canvas, (w / nw, h / nh)


def box_around_points(
    xy: np.ndarray, margins: tuple[float, ...], image_shape: tuple[int, ...], min_px: float = 0.0
) -> np.ndarray:
    """Box (4,) float32 xyxy around points, widened by margins and clipped to the image.

    Parameters
    ----------
    xy : np.ndarray
        (N, 2) points, N >= 1, pixels.
    margins : tuple of float
        Left, top, right, bottom margin as fractions of the points' longer extent.
    image_shape : tuple of int
        (H, W, ...) of the image the box is clipped to.
    min_px : float
        Pixels added to every margin (keeps a box around nearly coincident points).
    """
    if len(margins) != 4:
        raise ValueError(f"margins must be (left, top, right, bottom), got {margins!r}")
    pts = np.asarray(xy, np.float64).reshape(-1, 2)
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    extent = max(x1 - x0, y1 - y0)
    left, top, right, bottom = (m * extent + min_px for m in margins)
    h, w = image_shape[:2]
    return np.array(
        [max(0.0, x0 - left), max(0.0, y0 - top), min(float(w), x1 + right), min(float(h), y1 + bottom)], np.float32
    )


def box_around_keypoints(
    keypoints: np.ndarray,
    margins: tuple[float, ...],
    image_shape: tuple[int, ...],
    min_confidence: float,
    min_points: int = 4,
    min_px: float = 0.0,
) -> np.ndarray | None:
    """:func:`box_around_points` of the finite keypoints with confidence >= ``min_confidence``.

    Parameters
    ----------
    keypoints : np.ndarray
        (K, 3) x, y, confidence.

    Returns
    -------
    np.ndarray or None
        (4,) float32 xyxy, or None when fewer than ``min_points`` keypoints qualify.
    """
    kp = np.asarray(keypoints)
    ok = np.isfinite(kp[:, :2]).all(axis=1) & (kp[:, 2] >= min_confidence)
    if ok.sum() < min_points:
        return None
    return box_around_points(kp[ok, :2], margins, image_shape, min_px)


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersection areas (N, M) of (N, 4) and (M, 4) xyxy boxes, and each set's areas (N,), (M,); float64."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter, area_a, area_b


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix between (N, 4) and (M, 4) xyxy boxes -> (N, M) float64 (0 where the union is empty)."""
    inter, area_a, area_b = _intersections(a, b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) share of the smaller box of each pair covered by their intersection (xyxy boxes; float64).

    1 when one box lies inside the other, whatever their sizes (unlike IoU); 0 for an empty box.
    """
    inter, area_a, area_b = _intersections(a, b)
    smaller = np.minimum(np.clip(area_a, 0, None)[:, None], np.clip(area_b, 0, None)[None, :])
    return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0.0)


def scaled_box(box: np.ndarray, factor: float, shape: tuple[int, ...]) -> np.ndarray:
    """``box`` (4, xyxy pixels) scaled by ``factor`` about its centre, clipped to an image of ``shape`` (H, W, ...)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    height, width = shape[:2]
    return np.array(
        [max(0.0, cx - hw), max(0.0, cy - hh), min(float(width), cx + hw), min(float(height), cy + hh)], np.float32
    )


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB.

    Raises
    ------
    HindsightInputError
        One plain line naming the file when it is missing, not a file, empty or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise HindsightInputError(f"not a file: {path.name or str(path)}")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise HindsightInputError(f"cannot read image: {path.name}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
