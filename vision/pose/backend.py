"""The pose-backend interface and the tracker around the project's dog keypoint model."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.model.geometry import box_around_keypoints, box_iou, box_overlap_of_smaller, scaled_box


@dataclass(frozen=True)
class FramePose:
    """One frame's keypoints for the followed dog.

    Attributes
    ----------
    keypoints
        float32, shape ``(keypoint, 3)``: x, y in pixels and confidence 0..1; NaN when no dog.
    bbox_xyxy
        float32, shape ``(4,)``, or None when no dog was found.
    score
        Dog score 0..1 (0 when no dog).
    """

    keypoints: np.ndarray
    bbox_xyxy: np.ndarray | None
    score: float

    @classmethod
    def empty(cls, n_keypoints: int = len(CANONICAL_KEYPOINTS)) -> FramePose:
        """A frame without a dog."""
        return cls(np.full((n_keypoints, 3), np.nan, dtype=np.float32), None, 0.0)


@runtime_checkable
class PoseBackend(Protocol):
    """What a pose source must provide."""

    name: str
    keypoint_names: tuple[str, ...]

    def reset(self) -> None:
        """Forget any state carried from frame to frame (call before a new clip)."""

    def get_pose(self, image_rgb: np.ndarray) -> FramePose:
        """Keypoints of the followed dog in one upright RGB ``uint8`` frame ``(H, W, 3)``."""


class ModelTracker:
    """Follow one dog through a clip with a detector + keypoint model.

    Keypoints are read in a box around the dog's last keypoints, which is fast and keeps the
    same dog when several are in view. Every ``redetect_every`` frames the followed dog is checked: with a model
    that offers ``confirm_dog`` (one detector pass), the dog stays followed when the detector still
    sees it where its keypoints are, and the next box grows to cover the detector's box too (a box
    that shrank onto part of the dog recovers). When the check fails (or the model has no such
    check) the whole frame is searched, and the detection overlapping the followed dog most is
    kept; when that search finds nothing but the keypoints are still confident, the dog is kept
    for up to ``max_unconfirmed`` checks in a row (a weak detector frame does not drop a dog in
    plain view). The dog is lost when its keypoints fade; a lost dog is searched for every
    ``search_every`` frames (the best scoring one is taken).

    Parameters
    ----------
    model
        Any object with ``detect(image, max_dogs, min_score)`` and
        ``keypoints_in_box(image, bbox_xyxy, score)`` returning detections with
        ``bbox_xyxy``, ``score`` and ``keypoints`` (see :mod:`vision.model.detector`),
        optionally ``confirm_dog(image, keypoints)`` returning a box or None.
    redetect_every : int
        Frames between checks of the followed dog.
    min_score : float
        Dog score a detection needs.
    keypoint_threshold : float
        Confidence of the keypoints that place the next box; a followed dog whose mean keypoint
        confidence falls under half of it is lost.
    search_every : int
        Frames between whole-frame searches while no dog is followed (1: every frame).
    max_unconfirmed : int
        Failed checks in a row after which a followed dog that no search finds is dropped.
    """

    name = "hindsight-onnx"
    keypoint_names = CANONICAL_KEYPOINTS

    def __init__(
        self,
        model: Any,
        *,
        redetect_every: int = 10,
        min_score: float = 0.3,
        keypoint_threshold: float = 0.3,
        search_every: int = 3,
        max_unconfirmed: int = 3,
    ) -> None:
        self.model = model
        self.redetect_every = max(1, int(redetect_every))
        self.min_score = min_score
        self.keypoint_threshold = keypoint_threshold
        self.search_every = max(1, int(search_every))
        self.max_unconfirmed = max(0, int(max_unconfirmed))
        self.reset()

    def reset(self) -> None:
        """Start a new clip."""
        self._box: np.ndarray | None = None
        self._frame = 0
        self._lost_frames = 0
        self._unconfirmed = 0

    @property
    def model_version(self) -> str | None:
        """The followed model's ``version`` (:attr:`DogPoseModel.version`), None when it has none."""
        return getattr(self.model, "version", None)

    def _box_from_keypoints(self, kp: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
        return box_around_keypoints(kp, (0.15,) * 4, shape, self.keypoint_threshold, min_px=4.0)

    def _confident(self, keypoints: np.ndarray) -> bool:
        return keypoint_support(keypoints) >= 0.5 * self.keypoint_threshold

    def _search(self, image_rgb: np.ndarray) -> Any:
        """The whole-frame detection to follow, or None.

        Candidates are ranked by dog score times keypoint support (:func:`keypoint_support`): a
        detector peak on part of a dog (its head, say) can outscore the whole dog, but the keypoints
        read in its box are weak. While a dog is followed, only candidates overlapping it (at least
        30 % of the smaller box) compete; when none does, the one overlapping it most is kept.
        """
        found = self.model.detect(image_rgb, max_dogs=5, min_score=self.min_score)
        if not found:
            return None
        support = [float(d.score) * keypoint_support(np.asarray(d.keypoints)) for d in found]
        if self._box is None:
            return found[int(np.argmax(support))]
        boxes = np.array([d.bbox_xyxy for d in found], np.float64).reshape(-1, 4)
        covered = box_overlap_of_smaller(boxes, self._box[None])[:, 0]
        near = [i for i in range(len(found)) if covered[i] >= 0.3]
        if near:
            return found[max(near, key=lambda i: support[i])]
        overlap = box_iou(boxes, self._box[None])[:, 0]
        return max(zip(overlap, found, strict=True), key=lambda o: (o[0], o[1].score))[1]

    def _read(self, image_rgb: np.ndarray) -> Any:
        """Keypoints read in the carried-over box, or in a box twice its size when that reads better.

        A box that shrank onto part of the dog reads weak keypoints (mean confidence under
        ``keypoint_threshold``); the larger box around the same centre takes the whole dog in again,
        and the next box is fitted around the keypoints read there.
        """
        assert self._box is not None
        read = self.model.keypoints_in_box(image_rgb, self._box, 1.0)
        first = keypoint_support(np.asarray(read.keypoints))
        if first >= self.keypoint_threshold:
            return read
        grown = scaled_box(self._box, 2.0, image_rgb.shape)
        again = self.model.keypoints_in_box(image_rgb, grown, 1.0)
        return again if keypoint_support(np.asarray(again.keypoints)) > first else read

    def get_pose(self, image_rgb: np.ndarray) -> FramePose:
        """Keypoints of the followed dog in this frame."""
        check = self._box is not None and self._frame % self.redetect_every == 0
        self._frame += 1
        followed = None  # the followed dog read in its carried-over box, when still confident
        confirmed: np.ndarray | None = None
        search = self._box is None
        if self._box is not None:
            read = self._read(image_rgb)
            if self._confident(np.asarray(read.keypoints)):
                followed = read
                if check:
                    confirm = getattr(self.model, "confirm_dog", None)
                    confirmed = confirm(image_rgb, np.asarray(read.keypoints)) if confirm is not None else None
                    search = confirmed is None
            else:
                search = True
        detection = followed
        if search:
            if self._box is None and self._lost_frames % self.search_every:
                self._lost_frames += 1
                return FramePose.empty(len(self.keypoint_names))
            found = self._search(image_rgb)
            if found is not None:
                detection, self._unconfirmed = found, 0
            elif followed is not None and self._unconfirmed < self.max_unconfirmed:
                self._unconfirmed += 1  # keypoints still confident: a weak detector frame does not drop the dog
            else:
                detection = None
        if detection is None:
            self._box, self._unconfirmed = None, 0
            self._lost_frames += 1
            return FramePose.empty(len(self.keypoint_names))
        self._lost_frames = 0
        if confirmed is not None:
            self._unconfirmed = 0
        kp = np.asarray(detection.keypoints, dtype=np.float32)
        box = self._box_from_keypoints(kp, image_rgb.shape)
        box = box if box is not None else np.asarray(detection.bbox_xyxy, dtype=np.float32)
        if confirmed is not None:  # the union: the detector's box may cover parts the keypoints missed
            box = np.concatenate([np.minimum(box[:2], confirmed[:2]), np.maximum(box[2:], confirmed[2:])])
        self._box = box.astype(np.float32)
        return FramePose(kp, np.asarray(detection.bbox_xyxy, dtype=np.float32), float(detection.score))


def keypoint_support(keypoints: np.ndarray) -> float:
    """Mean keypoint confidence of a (K, 3) read (x, y, confidence), a missing confidence counting as 0."""
    conf = np.asarray(keypoints, np.float64)[:, 2]
    return float(np.mean(np.where(np.isfinite(conf), conf, 0.0))) if conf.size else 0.0


def score_threshold(model_path: str | os.PathLike[str]) -> float:
    """The dog-score threshold calibrated for a model (``score_threshold`` in its JSON sidecar), else 0.3."""
    sidecar = Path(model_path).with_suffix(".json")
    try:
        value = json.loads(sidecar.read_text(encoding="utf-8")).get("score_threshold")
    except (OSError, ValueError):
        return 0.3
    return float(value) if isinstance(value, (int, float)) and 0 < value < 1 else 0.3


def default_backend(model_path: str | None = None, threads: int = 2) -> ModelTracker:
    """The project's ONNX dog model wrapped in a :class:`ModelTracker`.

    Raises
    ------
    FileNotFoundError
        When the model manifest or a network is missing (``models/dog_pose.json`` or ``HINDSIGHT_MODEL``).
    """
    from vision.model.detector import DogPoseModel
    from vision.model.manifest import default_model_path

    path = Path(model_path) if model_path else default_model_path()
    # In video the dog is followed from frame to frame: the whole-frame search for close-ups would
    # cost three more network passes on every frame without a dog (tracker 86 -> 75 fps at 720p).
    model = DogPoseModel.load(path, threads=threads, whole_frame_fallback=False)
    return ModelTracker(model, min_score=score_threshold(path))
