"""Dog detection and keypoints with the exported ONNX networks (onnxruntime only, no torch).

A model is a set of networks named by a manifest (``dog_pose.json``, :mod:`vision.model.manifest`):

- the *detector*: the whole frame is letterboxed (longer side ``det_size``) and a CenterNet head
  gives dog centres, scores and box sizes (:class:`~vision.model.scorer.DogScorer`);
- optionally a *verifier* scoring each candidate box's crop, combined with the detector's peak
  into the calibrated dog score (:class:`~vision.model.scorer.DogScorer`);
- the *keypoint network*: each box is cropped (square, 1.25 x its longer side, ``kp_size``) and 20
  heatmaps are decoded with a sub-pixel fit (:class:`~vision.model.keypoints.KeypointReader`);
- optionally a *box keypoint network* (its own file, or an ensemble's first member) whose keypoints
  only place the box that the keypoint network then reads.

:class:`DogPoseModel` composes them: :meth:`~DogPoseModel.load`, :meth:`~DogPoseModel.detect`,
:meth:`~DogPoseModel.keypoints_in_box(es) <DogPoseModel.keypoints_in_boxes>` and
:meth:`~DogPoseModel.confirm_dog`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS
from vision.model.decode import suppress_duplicates
from vision.model.engine import Network, open_network
from vision.model.geometry import box_iou, read_rgb
from vision.model.keypoints import DogDetection, KeypointReader
from vision.model.manifest import ModelManifest, default_model_path, model_files
from vision.model.scorer import DogScorer

__all__ = ["DogDetection", "DogPoseModel", "keypoints_report"]


class DogPoseModel:
    """ONNX dog detector, verifier and keypoint network.

    Use :meth:`load`. :meth:`detect` finds dogs in a whole frame; :meth:`keypoints_in_box` gives the
    keypoints of a known box (frame-to-frame tracking); :meth:`confirm_dog` checks a followed dog
    with the detector alone.

    Parameters
    ----------
    det_session, kp_session : Network or None
        The detector and the keypoint network (None: a model without it, for tests).
    meta : dict
        The manifest object.
    verifier, box_kp_session : Network or None
        The verifier and the box keypoint network, when the model has them.

    Attributes
    ----------
    manifest : ModelManifest
        The typed manifest.
    scorer : DogScorer
        Candidates and their dog score.
    reader : KeypointReader
        Keypoints in boxes.
    score_threshold : float
        Default minimum dog score of :meth:`detect`.
    whole_frame_fallback, whole_frame_always : bool
        Try the whole frame as a candidate when no detector candidate passes (on every image, with both).
    """

    #: IoU a detector peak needs with the box around a followed dog's keypoints to confirm it (:meth:`confirm_dog`).
    confirm_iou = 0.5
    #: A followed dog shorter than this (pixels) in the ``det_size`` view of its frame is checked in
    #: the frame's closer view (:meth:`DogScorer.close_view`).
    confirm_min_dog_px = 64

    def __init__(
        self,
        det_session: Network | None,
        kp_session: Network | None,
        meta: dict[str, Any],
        verifier: Network | None = None,
        box_kp_session: Network | None = None,
    ) -> None:
        self.manifest = ModelManifest.from_dict(meta)
        self.scorer = DogScorer(det_session, verifier, self.manifest)
        self.reader = KeypointReader(kp_session, box_kp_session, self.manifest)
        self.score_threshold = self.manifest.score_threshold
        self.whole_frame_fallback = self.manifest.whole_frame_fallback
        self.whole_frame_always = self.manifest.whole_frame_always

    @property
    def meta(self) -> dict[str, Any]:
        """The manifest object as read."""
        return self.manifest.raw

    @property
    def version(self) -> str | None:
        """The model's version (the manifest's ``version``), None when it does not say."""
        return self.manifest.version

    @classmethod
    def load(
        cls, path: str | Path | None = None, threads: int = 2, whole_frame_fallback: bool | None = None
    ) -> DogPoseModel:
        """Load the networks named by a model manifest.

        Parameters
        ----------
        path : str, Path or None
            Manifest (``dog_pose.json``); None -> :func:`~vision.model.manifest.default_model_path`.
        threads : int
            Threads of each operator.
        whole_frame_fallback : bool or None
            Override the manifest's ``inference.whole_frame_fallback`` (see :meth:`detect`); None keeps it.

        Raises
        ------
        FileNotFoundError
            When the manifest or a network file is missing.
        ValueError
            When the manifest is not one.
        """
        path = Path(path) if path is not None else default_model_path()
        hint = "set HINDSIGHT_MODEL to a model manifest, or retrain (python -m hindsight_training.train)"
        if not path.is_file():
            raise FileNotFoundError(f"dog pose model not found at {path}; {hint}")
        manifest = ModelManifest.read(path)
        try:
            files = model_files(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a dog pose model manifest: {path.name}") from exc
        for f in files.values():
            if not f.is_file():
                raise FileNotFoundError(f"dog pose network not found at {f}; {hint}")
        sessions = {role: open_network(f, threads) for role, f in files.items()}
        box = sessions.get("box_keypoints")
        if box is None and manifest.box_keypoints_output:
            box = open_network(files["keypoints"], threads, output=manifest.box_keypoints_output)
        model = cls(sessions["detector"], sessions["keypoints"], manifest.raw, sessions.get("verifier"), box)
        if whole_frame_fallback is not None:
            model.whole_frame_fallback = whole_frame_fallback
        return model

    def detect(
        self, image_rgb: np.ndarray, max_dogs: int = 5, min_score: float | None = None, refine: bool | None = None
    ) -> list[DogDetection]:
        """Find dogs in a whole frame, best first.

        The detector's boxes are coarse. With ``refine``, each dog's keypoints are read a second time
        in a box around its confident first-pass keypoints (``box_from_keypoints`` in the manifest);
        that box is returned, and a refined box overlapping a better one (IoU > 0.5) is dropped. When
        no candidate reaches the threshold and ``whole_frame_fallback`` is on, the whole frame is tried
        as a last candidate (close-ups fill the frame and give weak peaks); with
        ``whole_frame_always`` it is scored on every image and reported beside the passing
        candidates. When still no dog is found in a frame larger than the training images, the
        detector looks again in its closer view (a small dog in a phone's frame).

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB, any size.
        max_dogs : int
            Maximum number of dogs returned.
        min_score : float or None
            Minimum dog score; None -> ``score_threshold``.
        refine : bool or None
            Refine boxes from keypoints; None -> when the manifest gives ``box_from_keypoints``.

        Returns
        -------
        list of DogDetection
            Sorted by score, empty when no dog.
        """
        threshold = self.score_threshold if min_score is None else min_score
        refine = bool(refine or (refine is None and self.reader.box_refinement is not None))
        # The whole-frame candidate's raw score comes from every peak, not only those that could pass.
        peaks = self.scorer.detector_peaks(image_rgb, max_dogs)
        found = self._passing_dogs(image_rgb, max_dogs, threshold, peaks, refine)
        if self.whole_frame_fallback and (not found or self.whole_frame_always):
            box, whole_score = self.scorer.whole_frame_score(image_rgb, self.reader, peaks, refine)
            if whole_score >= threshold:  # the dog is read only in a whole frame that passes
                whole = self.reader.read(image_rgb, box[None], np.array([whole_score], np.float32))[0]
                found = sorted([*found, whole], key=lambda d: -d.score)
                found = (suppress_duplicates(found) if refine else found)[:max_dogs]
        closer = self.scorer.close_view(image_rgb.shape)
        if not found and closer is not None:  # a small dog in a large frame is only a few cells wide
            closer_peaks = self.scorer.detector_peaks(image_rgb, max_dogs, closer)
            found = self._passing_dogs(image_rgb, max_dogs, threshold, closer_peaks, refine)
        return found

    def _passing_dogs(
        self,
        image_rgb: np.ndarray,
        max_dogs: int,
        threshold: float,
        peaks: tuple[np.ndarray, np.ndarray],
        refine: bool,
    ) -> list[DogDetection]:
        """The dogs read in the detector's candidates that score at least ``threshold``, best first."""
        boxes, raw, dog_prob = self.scorer.candidates(image_rgb, max_dogs, threshold, peaks)
        if not len(boxes):
            return []
        score = self.scorer.combined_score(raw, dog_prob)
        keep = np.flatnonzero(score >= threshold)
        keep = keep[np.argsort(-score[keep], kind="stable")]
        if not len(keep):
            return []
        found = self.reader.read_dogs(image_rgb, boxes[keep], score[keep], refine)
        return suppress_duplicates(found) if refine else found

    def keypoints_in_box(self, image_rgb: np.ndarray, bbox_xyxy: np.ndarray, score: float = 1.0) -> DogDetection:
        """Keypoints of the dog in a given box (e.g. carried over from the previous frame).

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        bbox_xyxy : np.ndarray
            (4,) box in input-image pixels.
        score : float
            Score copied into the result.
        """
        box = np.asarray(bbox_xyxy, np.float32).reshape(1, 4)
        return self.reader.read(image_rgb, box, np.array([score], np.float32))[0]

    def keypoints_in_boxes(self, image_rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> list[DogDetection]:
        """Keypoints of the dogs in several boxes, one batched pass of the keypoint network.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        boxes : np.ndarray
            (N, 4) float32 xyxy boxes in input-image pixels.
        scores : np.ndarray
            (N,) scores copied into the results.

        Returns
        -------
        list of DogDetection
            One per box, in order, each with its given box.
        """
        return self.reader.read(image_rgb, boxes, scores)

    def confirm_dog(self, image_rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
        """The detector's box of a dog followed by its keypoints, or None when the detector does not see it there.

        A cheap check for trackers (one detector pass; no verifier, no keypoint pass): the dog is
        confirmed when a detector peak overlaps the box fitted around its confident keypoints with
        IoU >= ``confirm_iou``. The pass runs in the ``det_size`` view, or in the frame's closer view
        when the dog is shorter than ``confirm_min_dog_px`` there.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        keypoints : np.ndarray
            (20, 3) the followed dog's keypoints in this frame (x, y, confidence).

        Returns
        -------
        np.ndarray or None
            (4,) float32 xyxy box of the confirming peak; None when no peak overlaps enough or too
            few keypoints are confident to place the box.
        """
        box = self.reader.box_around(np.asarray(keypoints, np.float32), image_rgb.shape)
        if box is None:
            return None
        seen = float(max(box[2] - box[0], box[3] - box[1])) * self.scorer.det_size / max(image_rgb.shape[:2])
        closer = self.scorer.close_view(image_rgb.shape) if seen < self.confirm_min_dog_px else None
        peaks, _ = self.scorer.detector_peaks(image_rgb, 5, closer)
        if len(peaks) == 0:
            return None
        overlap = box_iou(peaks, box[None])[:, 0]
        best = int(np.argmax(overlap))
        return peaks[best].copy() if overlap[best] >= self.confirm_iou else None


def keypoints_report(paths: list[str], model: DogPoseModel | None = None) -> list[dict[str, Any]]:
    """Detect dogs and keypoints in image files.

    Parameters
    ----------
    paths : list of str
        Image files.
    model : DogPoseModel or None
        Loaded once from the default path when None.

    Returns
    -------
    list of dict
        One entry per path, in order: ``{"image": path, "dogs": [{"bbox_xyxy", "score", "keypoints":
        {name: [x, y, conf]}}]}``; an unreadable file gives ``"dogs": []`` and ``"error": message``.
    """
    from vision.errors import HindsightInputError

    model = model or DogPoseModel.load()
    report: list[dict[str, Any]] = []
    for p in paths:
        try:
            image = read_rgb(p)
        except HindsightInputError as exc:
            report.append({"image": str(p), "dogs": [], "error": str(exc)})
            continue
        report.append(
            {
                "image": str(p),
                "dogs": [
                    {
                        "bbox_xyxy": [float(v) for v in d.bbox_xyxy],
                        "score": float(d.score),
                        "keypoints": {n: [float(v) for v in d.keypoints[k]] for k, n in enumerate(CANONICAL_KEYPOINTS)},
                    }
                    for d in model.detect(image)
                ],
            }
        )
    return report
