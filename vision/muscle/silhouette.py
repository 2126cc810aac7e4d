"""The dog's outline in a frame, by GrabCut seeded with its keypoints (OpenCV, CPU, offline).

Seeds: the skeleton drawn thick is sure foreground, the keypoints' padded hull
probable foreground, the crop's border sure background. Each result gets a
quality check; frames that fail it are dropped by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS, SKELETON

_INDEX = {n: i for i, n in enumerate(CANONICAL_KEYPOINTS)}


@dataclass(frozen=True)
class Silhouette:
    """A foreground mask of the dog in a crop of the frame.

    Attributes
    ----------
    mask
        bool, shape ``(h, w)``: True on the dog, in crop pixels.
    origin
        ``(x0, y0)`` of the crop in frame pixels.
    scale
        Crop pixels per frame pixel.
    quality
        0..1: share of the skeleton covered by the mask, penalised when the mask spills to the crop border.
    """

    mask: np.ndarray
    origin: tuple[float, float]
    scale: float
    quality: float

    @property
    def ok(self) -> bool:
        """Good enough to measure on."""
        return self.quality >= 0.8

    def to_crop(self, xy: np.ndarray) -> np.ndarray:
        """Frame pixel coordinates -> crop pixel coordinates."""
        return (np.asarray(xy, dtype=np.float64) - np.asarray(self.origin)) * self.scale


def _points(keypoints: np.ndarray, min_conf: float) -> dict[str, np.ndarray]:
    out = {}
    for name, i in _INDEX.items():
        x, y, c = keypoints[i]
        if np.isfinite(x) and np.isfinite(y) and (not np.isfinite(c) or c >= min_conf):
            out[name] = np.array([x, y], dtype=np.float64)
    return out


def segment_dog(
    image_rgb: np.ndarray, keypoints: np.ndarray, *, max_side: int = 220, min_conf: float = 0.3, iterations: int = 3
) -> Silhouette | None:
    """Segment the dog around its keypoints.

    Parameters
    ----------
    image_rgb
        ``uint8`` frame, shape ``(H, W, 3)``.
    keypoints
        float, shape ``(20, 3)`` in canonical order: x, y, confidence.

    Returns
    -------
    Silhouette or None
        None when too few keypoints are known to seed the segmentation.
    """
    pts = _points(keypoints, min_conf)
    if len(pts) < 6 or "tail_base" not in pts:
        return None
    arr = np.stack(list(pts.values()))
    x0, y0 = arr.min(axis=0)
    x1, y1 = arr.max(axis=0)
    size = max(x1 - x0, y1 - y0)
    pad = 0.2 * size + 6
    h, w = image_rgb.shape[:2]
    cx0, cy0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    cx1, cy1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
    crop = image_rgb[cy0:cy1, cx0:cx1]
    if crop.shape[0] < 8 or crop.shape[1] < 8:
        return None
    scale = min(1.0, max_side / max(crop.shape[:2]))
    small = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else crop.copy()
    sil = Silhouette(np.zeros(small.shape[:2], bool), (float(cx0), float(cy0)), scale, 0.0)
    local = {n: sil.to_crop(p) for n, p in pts.items()}
    front = local.get("withers", local.get("throat"))
    body = np.linalg.norm(front - local["tail_base"]) if front is not None else 0.3 * max(small.shape)
    thick = max(2, int(0.06 * body))
    mask = np.full(small.shape[:2], cv2.GC_PR_BGD, np.uint8)
    hull = cv2.convexHull(np.round(np.stack(list(local.values()))).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, cv2.GC_PR_FGD)
    skeleton = np.zeros(small.shape[:2], np.uint8)
    for a, b in SKELETON:
        if a in local and b in local:
            pa, pb = np.round(local[a]).astype(int), np.round(local[b]).astype(int)
            cv2.line(skeleton, tuple(pa), tuple(pb), 1, thick)
    mask[skeleton > 0] = cv2.GC_FGD
    border = max(2, int(0.02 * max(small.shape)))
    for sl in (np.s_[:border, :], np.s_[-border:, :], np.s_[:, :border], np.s_[:, -border:]):
        mask[sl] = np.where(mask[sl] == cv2.GC_FGD, cv2.GC_FGD, cv2.GC_BGD)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    except cv2.error:
        return None
    fg = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    n, labels = cv2.connectedComponents(fg.astype(np.uint8))
    if n > 2:
        tb = np.round(local["tail_base"]).astype(int)
        tb = np.clip(tb, 0, np.array(fg.shape[::-1]) - 1)
        keep = labels[tb[1], tb[0]]
        if keep == 0:
            counts = np.bincount(labels.ravel())[1:]
            keep = int(np.argmax(counts)) + 1
        fg = labels == keep
    covered = float(fg[skeleton > 0].mean()) if skeleton.any() else 0.0
    edge = np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]])
    spill = float(edge.mean())
    quality = max(0.0, covered - 2.0 * max(0.0, spill - 0.1))
    return Silhouette(fg, sil.origin, scale, quality)


def run_length(mask: np.ndarray, start: np.ndarray, direction: np.ndarray, max_len: float) -> float:
    """Length (crop pixels) of the foreground run from ``start`` along ``direction`` (one way).

    Steps of half a pixel; a gap of up to one pixel is bridged. Returns ``max_len``
    when the run has not ended by then.
    """
    d = np.asarray(direction, dtype=np.float64)
    d = d / (np.linalg.norm(d) or 1.0)
    h, w = mask.shape
    misses, s, last_hit = 0, 0.0, 0.0
    while s <= max_len:
        x, y = start + s * d
        xi, yi = int(round(x)), int(round(y))
        if not (0 <= xi < w and 0 <= yi < h):
            break
        if mask[yi, xi]:
            last_hit, misses = s, 0
        else:
            misses += 1
            if misses > 2:
                break
        s += 0.5
    return last_hit
