"""Network outputs to coordinates: heatmap peaks, detection peaks, box suppression (numpy + OpenCV)."""

from __future__ import annotations

from typing import Protocol, TypeVar

import cv2
import numpy as np

from vision.anatomy import symmetric_pairs
from vision.model.geometry import STRIDE, box_iou, from_cells


class HasBox(Protocol):
    """Anything with a ``bbox_xyxy`` (4,) box, e.g. a detected dog."""

    @property
    def bbox_xyxy(self) -> np.ndarray:
        """(4,) xyxy box in image pixels."""
        ...


BoxT = TypeVar("BoxT", bound=HasBox)


def nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 images -> (N, 3, H, W) float32 0..255, the networks' input layout."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


def decode_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Peak of each heatmap with a sub-cell log-quadratic (DARK-style) refinement.

    Parameters
    ----------
    heatmaps : np.ndarray
        (K, h, w) float32.

    Returns
    -------
    np.ndarray
        (K, 3) float32: x, y in heatmap cells (cell centres at integers), confidence 0..1.
    """
    k, h, w = heatmaps.shape
    out = np.zeros((k, 3), np.float32)
    for i in range(k):
        hm = heatmaps[i]
        iy, ix = np.unravel_index(int(np.argmax(hm)), hm.shape)
        conf = float(hm[iy, ix])
        x, y = float(ix), float(iy)
        if 0 < ix < w - 1 and 0 < iy < h - 1 and conf > 1e-3:
            patch = np.log(np.maximum(hm[iy - 1 : iy + 2, ix - 1 : ix + 2].astype(np.float64), 1e-6 * conf))
            dxx = patch[1, 2] - 2 * patch[1, 1] + patch[1, 0]
            dyy = patch[2, 1] - 2 * patch[1, 1] + patch[0, 1]
            dx = 0.5 * (patch[1, 2] - patch[1, 0])
            dy = 0.5 * (patch[2, 1] - patch[0, 1])
            if dxx < 0:
                x -= float(np.clip(dx / dxx, -0.5, 0.5))
            if dyy < 0:
                y -= float(np.clip(dy / dyy, -0.5, 0.5))
        out[i] = (x, y, min(max(conf, 0.0), 1.0))
    return out


def mirror_heatmaps(heatmaps: np.ndarray) -> np.ndarray:
    """Heatmaps of a mirrored crop mapped back to the original: x reversed, left/right channels swapped.

    Parameters
    ----------
    heatmaps : np.ndarray
        (N, 20, h, w) in CANONICAL_KEYPOINTS order.
    """
    out = heatmaps[..., ::-1].copy()
    for a, b in symmetric_pairs():
        out[:, [a, b]] = out[:, [b, a]]
    return out


def decode_detections(det: np.ndarray, max_dets: int, min_score: float) -> np.ndarray:
    """Peaks of the detection maps as boxes in network-input pixels.

    Parameters
    ----------
    det : np.ndarray
        (5, h, w) float32: sigmoid score, offset x, y, log width, height (cells).
    max_dets, min_score :
        Keep at most ``max_dets`` peaks scoring at least ``min_score``.

    Returns
    -------
    np.ndarray
        (N, 5) float32 x0, y0, x1, y1, score sorted by score, after box NMS (IoU > 0.6).
    """
    score = det[0]
    peaks = (score >= cv2.dilate(score, np.ones((3, 3), np.uint8))) & (score >= min_score)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-score[ys, xs])[: max_dets * 3]
    boxes = []
    for iy, ix in zip(ys[order], xs[order], strict=True):
        cx, cy = from_cells(np.array([ix + det[1, iy, ix], iy + det[2, iy, ix]]))
        bw = float(np.exp(np.clip(det[3, iy, ix], -3, 6))) * STRIDE
        bh = float(np.exp(np.clip(det[4, iy, ix], -3, 6))) * STRIDE
        boxes.append((cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, float(score[iy, ix])))
    keep = keep_apart(np.array(boxes, np.float64).reshape(-1, 5)[:, :4], 0.6, max_dets)
    return np.array([boxes[i] for i in keep], np.float32).reshape(-1, 5)


def keep_apart(boxes: np.ndarray, max_iou: float, limit: int | None = None) -> list[int]:
    """Greedy box suppression over (N, 4) xyxy boxes given best first.

    Returns the indices of the boxes that overlap no earlier kept box by more than ``max_iou``,
    at most ``limit`` of them (all when None).
    """
    iou = box_iou(boxes, boxes)
    kept: list[int] = []
    for i in range(len(iou)):
        if limit is not None and len(kept) == limit:
            break
        if all(iou[i, k] <= max_iou for k in kept):
            kept.append(i)
    return kept


def suppress_duplicates(detections: list[BoxT], max_iou: float = 0.5) -> list[BoxT]:
    """Detections (best first) without those whose box overlaps a better kept one by more than ``max_iou``."""
    boxes = np.array([d.bbox_xyxy for d in detections], np.float64).reshape(-1, 4)
    return [detections[i] for i in keep_apart(boxes, max_iou)]
