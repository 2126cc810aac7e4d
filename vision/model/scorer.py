"""The dog score of candidate boxes: detector peaks, the verifier, and their calibrated combination.

Score of a candidate = ``sigmoid(a * logit(detector peak) + logit(verifier outputs) @ c + b)``, the
calibration ``(a, b, c)`` fitted when the model was exported (``ModelManifest.calibration``).
"""

from __future__ import annotations

import numpy as np

from vision.model.decode import decode_detections, nchw
from vision.model.engine import Network
from vision.model.geometry import box_iou, letterbox, verifier_crop
from vision.model.keypoints import DogDetection, KeypointReader, present
from vision.model.manifest import ModelManifest


def logit(p: np.ndarray) -> np.ndarray:
    """``log(p / (1 - p))`` in float64, ``p`` clipped to [1e-6, 1 - 1e-6]."""
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


class DogScorer:
    """Candidate dog boxes of a frame and their calibrated dog score.

    Parameters
    ----------
    detector : Network or None
        (N, 3, H, W) float32 letterboxed frames -> (N, 5, H/4, W/4) detection maps.
    verifier : Network or None
        (N, 3, 224, 224) float32 box crops -> (N, V) dog probabilities; None: the score uses the peaks alone.
    manifest : ModelManifest
        Gives the detector's views, the verifier's crop and the calibration.
    """

    #: Raw detector score below which a peak is not considered at all.
    candidate_floor = 0.02
    #: Side of the verifier's square crop (its ImageNet input size).
    verify_size = 224
    #: Verifier dog probability assumed when bounding a candidate's best possible score: with a
    #: minimum score, candidates that could not reach it even at this probability are dropped
    #: before the (costly) verifier runs.
    verifier_ceiling = 0.99

    def __init__(self, detector: Network | None, verifier: Network | None, manifest: ModelManifest) -> None:
        self.detector = detector
        self.verifier = verifier
        self.det_size = manifest.det_size
        self.det_max_reduction = manifest.det_max_reduction
        self.det_max_size = manifest.det_max_size
        self.verify_crop = manifest.verify_crop
        self.calibration = manifest.calibration

    def close_view(self, shape: tuple[int, ...]) -> int | None:
        """Longer side (pixels) of the detector's closer look at a large frame of this ``shape`` (H, W, ...).

        The detector was trained on images of at most 640 px seen in a ``det_size`` view. For a frame
        longer than ``det_size * det_max_reduction``, the closer view reduces it by
        ``det_max_reduction`` at most, up to ``det_max_size`` (a multiple of 32); None for smaller
        frames (or a manifest without those keys). It is only a second look: in it a dog filling much
        of the frame is larger than any the detector was trained on.
        """
        longer = max(int(shape[0]), int(shape[1]))
        if self.det_max_reduction <= 0 or longer <= self.det_size * self.det_max_reduction:
            return None
        view = int(min(self.det_max_size, -(-longer / self.det_max_reduction // 32) * 32))
        return view if view > self.det_size else None

    def detector_peaks(
        self, image_rgb: np.ndarray, max_dogs: int, view: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detector peaks of a whole frame: boxes (N, 4) float32 in image pixels, raw scores (N,) float32.

        ``view``: longer side of the detector's view (None: ``det_size``; :meth:`close_view` for a closer look).
        """
        h, w = image_rgb.shape[:2]
        canvas, (sx, sy) = letterbox(image_rgb, self.det_size if view is None else view)
        det = present(self.detector, "detector").run(nchw(canvas[None]))[0]
        found = decode_detections(det, max_dogs, self.candidate_floor)
        boxes = found[:, :4] * np.array([sx, sy, sx, sy], np.float32)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w - 1)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h - 1)
        return boxes.astype(np.float32), found[:, 4].astype(np.float32)

    def verify(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Verifier outputs (N, V) float32 of each box's crop (cut as ``verify_crop`` says).

        V = 1 (the ImageNet dog-breed mass) or 2 (and the trained probe's probability of a whole dog).
        """
        size = self.verify_size
        crops = np.stack([verifier_crop(image_rgb, b, size, self.verify_crop) for b in boxes])
        return present(self.verifier, "verifier").run(nchw(crops)).reshape(len(boxes), -1).astype(np.float32)

    def combined_score(self, raw: np.ndarray, dog_prob: np.ndarray | None) -> np.ndarray:
        """Calibrated dog score of candidates: ``sigmoid(a*logit(raw) + logit(dog_prob) @ c + b)`` (float32).

        ``raw``: (N,) detector peaks; ``dog_prob``: (N, V) verifier outputs, (N,) when V = 1, or None.

        Raises
        ------
        ValueError
            When the verifier's outputs and the calibration's weights differ in number.
        """
        a, b, c = self.calibration
        z = a * logit(raw) + b
        if dog_prob is not None and any(c):
            probs = np.asarray(dog_prob).reshape(len(z), -1)
            if probs.shape[1] != len(c):
                raise ValueError(f"the verifier gives {probs.shape[1]} outputs, the score calibration weighs {len(c)}")
            z = z + logit(probs) @ np.array(c, np.float64)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def candidates(
        self,
        image_rgb: np.ndarray,
        max_dogs: int = 5,
        min_score: float | None = None,
        peaks: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Candidate dog boxes before scoring.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        max_dogs : int
            Maximum number of candidates.
        min_score : float or None
            None: every detector peak >= ``candidate_floor`` is verified and returned. Otherwise only
            the candidates that could score >= ``min_score`` with the verifier's probability at
            ``verifier_ceiling`` are (the verifier is the costly part of detection).
        peaks : (boxes, raw) or None
            This frame's detector peaks (:meth:`detector_peaks`), if already computed.

        Returns
        -------
        boxes : np.ndarray
            (N, 4) float32 xyxy in image pixels, at most ``max_dogs``, raw detector score >= ``candidate_floor``.
        raw : np.ndarray
            (N,) float32 raw detector peak scores.
        dog_prob : np.ndarray or None
            (N, V) float32 verifier outputs of each box (:meth:`verify`; None without a verifier).
        """
        boxes, raw = peaks if peaks is not None else self.detector_peaks(image_rgb, max_dogs)
        if self.verifier is None or len(boxes) == 0:
            return boxes, raw, None
        if min_score is None:
            return boxes, raw, self.verify(image_rgb, boxes)
        weights = np.array(self.calibration[2], np.float64)
        best_p = np.where(weights > 0, self.verifier_ceiling, 1.0 - self.verifier_ceiling)
        bound = self.combined_score(raw, np.tile(best_p, (len(raw), 1)).astype(np.float32))
        # At most max_dogs peaks come from the detector, so a bound below min_score is the only
        # reason to skip one; the others are verified in one batch.
        done = np.flatnonzero(bound >= min_score)
        if len(done) == 0:
            return boxes[:0], raw[:0], np.zeros(0, np.float32)
        return boxes[done], raw[done], self.verify(image_rgb, boxes[done])

    def whole_frame_features(
        self,
        image_rgb: np.ndarray,
        reader: KeypointReader,
        peaks: tuple[np.ndarray, np.ndarray] | None = None,
        refine: bool = True,
    ) -> tuple[np.ndarray, float, np.ndarray | None]:
        """The whole frame as a candidate: its box (4,) float32, raw score and verifier outputs (V,) or None.

        The box is the whole frame, refitted around the box network's keypoints with ``refine``
        (:meth:`KeypointReader.place_boxes`); the dog is not read in it. Its raw score is that of
        the best detector peak overlapping the box (IoU >= 0.5), else ``candidate_floor``.
        """
        h, w = image_rgb.shape[:2]
        box = np.array([[0, 0, w - 1, h - 1]], np.float32)
        if refine:
            box = reader.place_boxes(image_rgb, box)
        boxes, raw = peaks if peaks is not None else self.detector_peaks(image_rgb, 5)
        overlap = box_iou(np.asarray(boxes, np.float32).reshape(-1, 4), box)[:, 0]
        best_raw = max([self.candidate_floor, *(float(r) for r, o in zip(raw, overlap, strict=True) if o >= 0.5)])
        dog_prob = self.verify(image_rgb, box)[0] if self.verifier is not None else None
        return box[0], best_raw, dog_prob

    def whole_frame_score(
        self,
        image_rgb: np.ndarray,
        reader: KeypointReader,
        peaks: tuple[np.ndarray, np.ndarray] | None = None,
        refine: bool = True,
    ) -> tuple[np.ndarray, float]:
        """The whole-frame candidate's box (4,) float32 and dog score (:meth:`whole_frame_features`)."""
        box, raw, dog_prob = self.whole_frame_features(image_rgb, reader, peaks, refine)
        return box, float(self.combined_score(np.array([raw]), None if dog_prob is None else dog_prob[None])[0])

    def whole_frame_candidate(
        self,
        image_rgb: np.ndarray,
        reader: KeypointReader,
        peaks: tuple[np.ndarray, np.ndarray] | None = None,
        refine: bool = True,
    ) -> DogDetection:
        """The dog read in the whole frame, scored like a detector candidate (for close-ups, whose peaks are weak)."""
        box, score = self.whole_frame_score(image_rgb, reader, peaks, refine)
        return reader.read(image_rgb, box[None], np.array([score], np.float32))[0]
