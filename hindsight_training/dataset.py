"""Animal-Pose loading, canonical keypoint mapping, augmentation and training targets.

Pure numpy + OpenCV (no torch): every function returns numpy arrays. Coordinates are pixel
indices (x right, y down) of the image they refer to.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vision.anatomy import ANIMALPOSE_TO_CANONICAL, CANONICAL_KEYPOINTS, symmetric_pairs
from vision.model.geometry import (
    STRIDE,
    apply_affine,
    crop_matrix,
    letterbox_matrix,
    to_cells,
    warp_square,
)

#: Percent of training images a detector run keeps out of its training (``--score-holdout``), so
#: that the dog score and its threshold are fitted on images the detector has never seen.
SCORE_HOLDOUT_PERCENT = 15


def in_score_holdout(file: str, percent: int) -> bool:
    """Whether a training image belongs to the score-fit hold-out: a stable hash of its file name.

    The same images are held out by every run and on every machine (CRC-32 of the name, mod 100,
    below ``percent``); ``percent`` 0 holds out nothing.
    """
    return zlib.crc32(file.encode("utf-8")) % 100 < percent


@dataclass(frozen=True)
class Instance:
    """One labelled animal.

    Attributes
    ----------
    species : str
    bbox : np.ndarray
        (4,) float32 x0, y0, x1, y1.
    keypoints : np.ndarray
        (20, 3) float32 x, y, v (v = 1 labelled, 0 not) in CANONICAL_KEYPOINTS order.
    """

    species: str
    bbox: np.ndarray
    keypoints: np.ndarray


@dataclass(frozen=True)
class Record:
    """One image and its labelled animals."""

    file: str
    split: str
    width: int
    height: int
    instances: tuple[Instance, ...]


def canonical_index(source_names: list[str]) -> np.ndarray:
    """Index array ``idx`` so that ``canonical = source[idx]`` (shape (20,), int64)."""
    canon_of = [ANIMALPOSE_TO_CANONICAL[n] for n in source_names]
    return np.array([canon_of.index(c) for c in CANONICAL_KEYPOINTS], dtype=np.int64)


def load_animalpose(root: str | Path) -> list[Record]:
    """Load ``annotations.json`` of Animal-Pose with keypoints mapped to canonical order.

    Parameters
    ----------
    root : str or Path
        Folder holding ``annotations.json`` and ``images/``.

    Returns
    -------
    list of Record
        One per image, in file order.
    """
    root = Path(root)
    data = json.loads((root / "annotations.json").read_text())
    idx = canonical_index(list(data["keypoint_names"]))
    by_file: dict[str, list[Instance]] = {}
    for ann in data["annotations"]:
        kps = np.asarray(ann["keypoints"], dtype=np.float32).reshape(-1, 3)[idx]
        kps[kps[:, 2] <= 0] = 0.0
        kps[:, 2] = (kps[:, 2] > 0).astype(np.float32)
        inst = Instance(ann["species"], np.asarray(ann["bbox_xyxy"], dtype=np.float32), kps)
        by_file.setdefault(ann["file"], []).append(inst)
    return [
        Record(im["file"], im["split"], int(im["width"]), int(im["height"]), tuple(by_file.get(im["file"], [])))
        for im in data["images"]
    ]


def swap_pairs(keypoints: np.ndarray) -> np.ndarray:
    """Swap left/right rows of a (20, C) keypoint array (after a horizontal mirror)."""
    out = keypoints.copy()
    for a, b in symmetric_pairs():
        out[a], out[b] = keypoints[b], keypoints[a]
    return out


def hflip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Keypoints of the horizontally mirrored image (``x -> width - 1 - x``, left/right swapped).

    Parameters
    ----------
    keypoints : np.ndarray
        (20, 3) float32 x, y, v in CANONICAL_KEYPOINTS order.
    width : int
        Image width in pixels.
    """
    out = keypoints.copy()
    lab = out[:, 2] > 0
    out[lab, 0] = width - 1 - out[lab, 0]
    return swap_pairs(out)


def gaussian_heatmaps(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian heatmaps (K, h, w) float32 peaking at 1 at each (x, y, v) point with v > 0.

    Points are in heatmap-cell coordinates (cell centres at integers).
    """
    h, w = shape
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    out = np.zeros((len(points), h, w), dtype=np.float32)
    for k, (x, y, v) in enumerate(points):
        if v > 0:
            out[k] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return out


def photometric(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter, grey, Gaussian/motion blur and noise on an HxWx3 uint8 RGB image."""
    out = img.astype(np.float32)
    if rng.random() < 0.8:
        out = out * rng.uniform(0.65, 1.35) + rng.uniform(-30, 30)
        mean = out.mean(axis=2, keepdims=True)
        out = mean + (out - mean) * rng.uniform(0.6, 1.4)
        out = out * rng.uniform(0.9, 1.1, size=3).astype(np.float32)
    if rng.random() < 0.05:
        out = np.repeat(out.mean(axis=2, keepdims=True), 3, axis=2)
    r = rng.random()
    if r < 0.15:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.8))
    elif r < 0.3:
        n = int(rng.integers(3, 10))
        kern = np.zeros((n, n), np.float32)
        kern[n // 2, :] = 1.0 / n
        rot = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), float(rng.uniform(0, 180)), 1.0)
        kern = cv2.warpAffine(kern, rot, (n, n))
        out = cv2.filter2D(out, -1, kern / max(kern.sum(), 1e-6))
    if rng.random() < 0.2:
        out = out + rng.normal(0, rng.uniform(2, 8), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def occlude(img: np.ndarray, rng: np.random.Generator, n_max: int = 2) -> np.ndarray:
    """Paste 1..n_max random rectangles (flat colour or noise) on the image."""
    out = img.copy()
    h, w = out.shape[:2]
    for _ in range(int(rng.integers(1, n_max + 1))):
        rw, rh = int(w * rng.uniform(0.1, 0.35)), int(h * rng.uniform(0.1, 0.35))
        x, y = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
        if rng.random() < 0.5:
            out[y : y + rh, x : x + rw] = rng.integers(0, 256, 3, dtype=np.uint8)
        else:
            out[y : y + rh, x : x + rw] = rng.integers(0, 256, (rh, rw, 3), dtype=np.uint8)
    return out


@dataclass(frozen=True)
class BoxJitter:
    """Random box of a training crop: side x log-uniform ``scale``, centre moved by up to ``shift`` x box size."""

    scale: tuple[float, float] = (0.8, 1.3)
    shift: float = 0.12


#: Jitter of a label box: the boxes a network may be read in, from a coarse detector.
LABEL_BOX_JITTER = BoxJitter()
#: Jitter of a pipeline box (``hindsight_training.pipeline_boxes``): the box itself is one the pipeline makes.
PIPELINE_BOX_JITTER = BoxJitter(scale=(0.93, 1.08), shift=0.04)


def keypoint_sample(
    image: np.ndarray,
    inst: Instance,
    size: int,
    rng: np.random.Generator | None = None,
    sigma: float = 2.5,
    box: np.ndarray | None = None,
    jitter: BoxJitter = LABEL_BOX_JITTER,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Box crop of one animal with keypoint heatmap targets.

    Parameters
    ----------
    image : np.ndarray
        HxWx3 uint8 RGB.
    inst : Instance
        The animal.
    size : int
        Crop side in pixels (multiple of 32).
    rng : np.random.Generator or None
        Augment when given (box jitter, scale, rotation, flip, colour, blur, occlusion).
    sigma : float
        Gaussian sigma in heatmap cells.
    box : np.ndarray or None
        (4,) xyxy box to crop around; None -> the label box ``inst.bbox``.
    jitter : BoxJitter
        Random scale and shift of that box (with ``rng``).

    Returns
    -------
    crop : np.ndarray
        (size, size, 3) uint8.
    heatmaps : np.ndarray
        (20, size/4, size/4) float32.
    weights : np.ndarray
        (20,) float32, 1 for labelled keypoints inside the crop.
    """
    kps = inst.keypoints
    crop_box = inst.bbox if box is None else np.asarray(box, np.float32)
    if rng is not None:
        flip = bool(rng.random() < 0.5)
        lo, hi = jitter.scale
        mat = crop_matrix(
            crop_box,
            size,
            scale=float(np.exp(rng.uniform(np.log(lo), np.log(hi)))),
            shift=(float(rng.uniform(-jitter.shift, jitter.shift)), float(rng.uniform(-jitter.shift, jitter.shift))),
            rot_deg=float(rng.uniform(-30, 30)) if rng.random() < 0.6 else 0.0,
            flip=flip,
        )
    else:
        flip = False
        mat = crop_matrix(crop_box, size)
    crop = warp_square(image, mat, size)
    pts = kps.copy()
    pts[:, :2] = apply_affine(kps[:, :2], mat)
    if flip:
        pts = swap_pairs(pts)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] <= size - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= size - 1)
    pts[:, 2] = pts[:, 2] * inside
    if rng is not None:
        crop = photometric(crop, rng)
        if rng.random() < 0.3:
            crop = occlude(crop, rng)
    cells = pts.copy()
    cells[:, :2] = to_cells(pts[:, :2])
    hm = gaussian_heatmaps(cells, (size // STRIDE, size // STRIDE), sigma)
    return crop, hm, pts[:, 2].astype(np.float32)


def detection_sample(
    image: np.ndarray,
    boxes: np.ndarray,
    size: int,
    rng: np.random.Generator | None = None,
    zoom: tuple[float, float] = (0.45, 1.3),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Whole-image letterbox with CenterNet targets for the positive (dog) boxes.

    Parameters
    ----------
    image : np.ndarray
        HxWx3 uint8 RGB.
    boxes : np.ndarray
        (M, 4) float32 dog boxes (other animals and people are background).
    size : int
        Canvas side (multiple of 32).
    rng : np.random.Generator or None
        Augment when given (scale, placement, flip, colour, blur).
    zoom : (float, float)
        Range of the scale relative to the letterbox (log-uniform); above 1 the image is cut
        (close-ups, dogs cut by the frame edge).

    Returns
    -------
    canvas : np.ndarray
        (size, size, 3) uint8.
    heat : np.ndarray
        (1, s, s) float32 centre heatmap, s = size / 4, exactly 1 at each centre cell.
    reg : np.ndarray
        (4, s, s) float32 offset x, y and log width, height (cells) at the centre cells.
    mask : np.ndarray
        (1, s, s) float32 1 at the centre cells.
    """
    h, w = image.shape[:2]
    if rng is not None:
        k = size / max(w, h) * float(np.exp(rng.uniform(np.log(zoom[0]), np.log(zoom[1]))))
        sw, sh = w * k, h * k
        ox = rng.uniform(min(0.0, size - sw), max(0.0, size - sw))
        oy = rng.uniform(min(0.0, size - sh), max(0.0, size - sh))
        mat = np.array([[k, 0, ox], [0, k, oy]], dtype=np.float32)
        if rng.random() < 0.5:
            mat = np.array([[-1, 0, size - 1], [0, 1, 0]], dtype=np.float32) @ np.vstack([mat, [0, 0, 1]])
    else:
        mat = letterbox_matrix(w, h, size)
    canvas = warp_square(image, mat, size, cv2.INTER_AREA if mat[0, 0] ** 2 < 0.5 else cv2.INTER_LINEAR)
    if rng is not None:
        canvas = photometric(canvas, rng)
    s = size // STRIDE
    heat = np.zeros((1, s, s), np.float32)
    reg = np.zeros((4, s, s), np.float32)
    mask = np.zeros((1, s, s), np.float32)
    ys = np.arange(s, dtype=np.float32)[:, None]
    xs = np.arange(s, dtype=np.float32)[None, :]
    for box in np.asarray(boxes, np.float32).reshape(-1, 4):
        corners = apply_affine(np.array([[box[0], box[1]], [box[2], box[3]]], np.float32), mat)
        x0, x1 = sorted(corners[:, 0])
        y0, y1 = sorted(corners[:, 1])
        area = (x1 - x0) * (y1 - y0)
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, size - 1), min(y1, size - 1)
        if cx1 - cx0 < 4 or cy1 - cy0 < 4 or (cx1 - cx0) * (cy1 - cy0) < 0.3 * area:
            continue
        c = to_cells(np.array([(cx0 + cx1) / 2, (cy0 + cy1) / 2], np.float32))
        bw, bh = (cx1 - cx0) / STRIDE, (cy1 - cy0) / STRIDE
        sx, sy = max(0.8, 0.54 * bw / 6), max(0.8, 0.54 * bh / 6)
        g = np.exp(-((xs - c[0]) ** 2) / (2 * sx**2) - ((ys - c[1]) ** 2) / (2 * sy**2))
        heat[0] = np.maximum(heat[0], g)
        ix, iy = int(np.clip(round(c[0]), 0, s - 1)), int(np.clip(round(c[1]), 0, s - 1))
        heat[0, iy, ix] = 1.0
        reg[:, iy, ix] = (c[0] - ix, c[1] - iy, math.log(bw), math.log(bh))
        mask[0, iy, ix] = 1.0
    return canvas, heat, reg, mask
