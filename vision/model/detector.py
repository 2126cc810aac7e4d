"""Dog detection + keypoints with the exported ONNX models (onnxruntime only, no torch).

The model is a set of networks named by a JSON manifest (``models/dog_pose.json``):

- the *detector* (``dog_detector.onnx``): the whole frame is letterboxed (longer side
  ``det_size``, default 256) and a CenterNet head gives dog centres, scores and box sizes; a frame
  larger than the training images where no dog passes is seen again closer
  (:meth:`DogPoseModel.close_view`);
- the *keypoint network* (``dog_keypoints.onnx``): each box is cropped (square, 1.25 x its
  longer side, ``kp_size`` default 192) and 20 heatmaps are decoded with a sub-pixel
  log-quadratic fit around the peak;
- optionally a *verifier* (``dog_verifier.onnx``) scoring each candidate box's crop.

A *box keypoint network* may read the first pass, whose keypoints only place the box the keypoint
network then reads (:meth:`DogPoseModel.place_boxes`): ``files.box_keypoints`` (its own file), or
for an ensemble its first member alone (graph output ``inference.box_keypoints_output``,
``kp_box``). The boxes, and so the fitted dog score, are then those of that single network.
Weights stored as int8 (``export``'s ``store_weights_int8``) are expanded to float32 when a
network is loaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vision.anatomy import CANONICAL_KEYPOINTS, symmetric_pairs
from vision.model.dataset import read_rgb
from vision.model.engine import Network, open_network
from vision.model.geometry import (
    STRIDE,
    VERIFY_CROPS,
    box_around_keypoints,
    crop_matrix,
    from_cells,
    letterbox,
    verifier_crop,
    warp_square,
)
from vision.model.metrics import box_iou

#: Box refinement without ``box_from_keypoints`` in the manifest, and the cut-offs ``export`` writes there:
#: keypoints at this confidence or more count, at least ``min_points`` of them, else the detector box stays.
DEFAULT_BOX_REFINEMENT: dict[str, Any] = {"margins": [0.09] * 4, "min_confidence": 0.2, "min_points": 4}


@dataclass(frozen=True)
class DogDetection:
    """One detected dog.

    Attributes
    ----------
    bbox_xyxy : np.ndarray
        (4,) float32, pixels of the input image.
    score : float
        Dog score in 0..1.
    keypoints : np.ndarray
        (20, 3) float32 x, y (input-image pixels), confidence 0..1; CANONICAL_KEYPOINTS order.
    """

    bbox_xyxy: np.ndarray
    score: float
    keypoints: np.ndarray


def default_model_path() -> Path:
    """The model manifest: ``$HINDSIGHT_MODEL`` if set, else ``<repo>/models/dog_pose.json``."""
    env = os.environ.get("HINDSIGHT_MODEL")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models" / "dog_pose.json"


def _rounded(value: object) -> float | None:
    return round(value, 3) if isinstance(value, float) else None


def model_summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """A model's version and headline validation figures, from its manifest (None for figures it lacks)."""
    out: dict[str, Any] = {"version": manifest.get("version")}
    val = (manifest.get("metrics") or {}).get("val_evaluation") or {}

    def hind(mode: dict[str, Any] | None) -> float | None:
        return _rounded(((mode or {}).get("pck10") or {}).get("hind_limb"))

    if val:
        side = (val.get("standing_side_on") or {}).get("gt_box") or {}
        out["validation"] = {
            "hind_limb_pck10_gt_box": hind(val.get("gt_box")),
            "hind_limb_pck10_end_to_end": hind(val.get("pipeline")),
            "dogs_found": _rounded((val.get("detection") or {}).get("found_iou50")),
            "hind_limb_pck10_standing_side_on": _rounded((side.get("hind_limb") or {}).get("rate")),
        }
    return out


def model_files(manifest: str | Path) -> dict[str, Path]:
    """The ONNX files a manifest names, role -> path (next to the manifest).

    Roles: ``detector`` and ``keypoints`` always; ``verifier`` and ``box_keypoints`` when named.
    """
    manifest = Path(manifest)
    meta = json.loads(manifest.read_text(encoding="utf-8"))
    files = meta.get("files") or {}
    out = {role: manifest.parent / str(files.get(role, f"dog_{role}.onnx")) for role in ("detector", "keypoints")}
    for role in ("verifier", "box_keypoints"):
        if files.get(role):
            out[role] = manifest.parent / str(files[role])
    return out


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


def suppress_duplicates(detections: list[DogDetection], max_iou: float = 0.5) -> list[DogDetection]:
    """Detections (best first) without those whose box overlaps a better kept one by more than ``max_iou``."""
    boxes = np.array([d.bbox_xyxy for d in detections], np.float64).reshape(-1, 4)
    return [detections[i] for i in keep_apart(boxes, max_iou)]


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, np.float64), 1e-6, 1 - 1e-6)
    return np.log(q / (1 - q))


def _present(network: Network | None, role: str) -> Network:
    """``network``, or a one-line error when the model was built without that network."""
    if network is None:
        raise RuntimeError(f"this dog pose model has no {role} network")
    return network


def _nchw(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 0..255."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


class DogPoseModel:
    """ONNX dog detector + keypoint network.

    Use :meth:`load`; ``detect`` finds dogs in a whole frame, ``keypoints_in_box`` gives the
    keypoints of a known box (frame-to-frame tracking).
    """

    #: Raw detector score below which a peak is not considered at all.
    candidate_floor = 0.02
    #: Side of the verifier's square crop (its ImageNet input size).
    verify_size = 224
    #: Verifier dog probability assumed when bounding a candidate's best possible score: with a
    #: minimum score, candidates that could not reach it even at this probability are dropped
    #: before the (costly) verifier runs.
    verifier_ceiling = 0.99
    #: IoU a detector peak needs with the box around a followed dog's keypoints to confirm it
    #: (:meth:`confirm_dog`). On the real clip the confirming peak overlaps that box by 0.54-0.86.
    confirm_iou = 0.5
    #: A followed dog shorter than this (pixels) in the ``det_size`` view of its frame is checked in
    #: the frame's :meth:`close_view`. A tenth of the training dogs are shorter (their median: 157 px).
    confirm_min_dog_px = 64

    def __init__(
        self,
        det_session: Network | None,
        kp_session: Network | None,
        meta: dict[str, Any],
        verifier: Network | None = None,
        box_kp_session: Network | None = None,
    ) -> None:
        self._det = det_session
        self._kp = kp_session
        #: The first keypoint pass, which places the refined boxes (:meth:`place_boxes`): the box
        #: keypoint network (its own file, or an ensemble's first member), else the keypoint network.
        self._box_kp = box_kp_session if box_kp_session is not None else kp_session
        self._verifier = verifier
        self.meta = meta
        self.det_size = int(meta.get("input", {}).get("det_size", 256))
        #: The detector's closer look at a large frame (:meth:`close_view`; ``input.det_max_reduction``,
        #: ``input.det_max_size``). Without them, every frame is seen in a ``det_size`` view only.
        self.det_max_reduction = float(meta.get("input", {}).get("det_max_reduction", 0.0))
        self.det_max_size = int(meta.get("input", {}).get("det_max_size", self.det_size))
        self.kp_size = int(meta.get("input", {}).get("kp_size", 192))
        #: How the verifier's crop is cut around a box (``input.verify_crop``, :func:`verifier_crop`); a
        #: manifest that does not say is read as up to 0.7.1, a square padded around the box.
        self.verify_crop = str(meta.get("input", {}).get("verify_crop", "square"))
        if self.verify_crop not in VERIFY_CROPS:
            raise ValueError(f"unknown input.verify_crop {self.verify_crop!r} in the model manifest")
        cal = meta.get("score_calibration") or {}
        #: score = sigmoid(a * logit(detector peak) + sum_i c_i * logit(verifier output i) + b); ``c``
        #: has one weight per verifier output (the breed mass, then the trained probe's probability).
        c = cal.get("c", 0.0)
        weights = tuple(float(v) for v in (c if isinstance(c, (list, tuple)) else [c]))
        self.calibration: tuple[float, float, tuple[float, ...]] = (
            float(cal.get("a", 1.0)),
            float(cal.get("b", 0.0)),
            weights,
        )
        thr = meta.get("score_threshold")
        #: Default minimum dog score of :meth:`detect` (fitted on training images, see ``export``).
        self.score_threshold = float(thr) if isinstance(thr, (int, float)) and 0 < thr < 1 else 0.3
        #: Average each crop's heatmaps with those of its mirror image (left/right channels swapped).
        self.flip_test = bool(meta.get("inference", {}).get("flip_test", False))
        #: Second keypoint pass in a box fitted around the first pass's keypoints (see :meth:`detect`):
        #: ``{"margins": [left, top, right, bottom], "min_confidence": c, "min_points": n}`` or None.
        refine = meta.get("inference", {}).get("box_from_keypoints")
        self.box_refinement: dict[str, Any] | None = refine if isinstance(refine, dict) else None
        #: Try the whole frame as a candidate when no detector candidate passes (see :meth:`detect`).
        self.whole_frame_fallback = bool(meta.get("inference", {}).get("whole_frame_fallback", False))
        #: With the fallback on, score the whole frame beside the detector's candidates on every image,
        #: not only when none passes (``inference.whole_frame_always``).
        self.whole_frame_always = bool(meta.get("inference", {}).get("whole_frame_always", False))

    @property
    def version(self) -> str | None:
        """The model's version (the manifest's ``version``), None when it does not say."""
        version = self.meta.get("version")
        return None if version is None else str(version)

    @classmethod
    def load(
        cls, path: str | Path | None = None, threads: int = 2, whole_frame_fallback: bool | None = None
    ) -> DogPoseModel:
        """Load the networks named by a model manifest.

        Parameters
        ----------
        path : str, Path or None
            Manifest (``dog_pose.json``); None -> :func:`default_model_path`.
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
        hint = "set HINDSIGHT_MODEL or retrain with `python -m vision.model.train`"
        if not path.is_file():
            raise FileNotFoundError(f"dog pose model not found at {path}; {hint}")
        try:
            files = model_files(path)
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a dog pose model manifest: {path.name}") from exc
        for f in files.values():
            if not f.is_file():
                raise FileNotFoundError(f"dog pose network not found at {f}; {hint}")
        sessions = {role: open_network(f, threads) for role, f in files.items()}
        box = sessions.get("box_keypoints")
        box_output = (meta.get("inference") or {}).get("box_keypoints_output")
        if box is None and box_output:
            box = open_network(files["keypoints"], threads, output=str(box_output))
        model = cls(sessions["detector"], sessions["keypoints"], meta, sessions.get("verifier"), box)
        if whole_frame_fallback is not None:
            model.whole_frame_fallback = whole_frame_fallback
        return model

    def _run_detector(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 -> (N, 5, H/4, W/4) detection maps."""
        return _present(self._det, "detector").run(batch)

    def _run_keypoints(self, batch: np.ndarray, session: Network | None = None) -> np.ndarray:
        """(N, 3, S, S) float32 crops -> (N, 20, S/4, S/4) heatmaps (flip-averaged when ``flip_test``).

        ``session``: the keypoint network to run (default the keypoint network, not the box one).
        """
        session = _present(self._kp if session is None else session, "keypoint")
        if not self.flip_test:
            return session.run(batch)
        n = len(batch)
        both = session.run(np.concatenate([batch, batch[..., ::-1]]))
        return 0.5 * (both[:n] + mirror_heatmaps(both[n:]))

    def detect(
        self, image_rgb: np.ndarray, max_dogs: int = 5, min_score: float | None = None, refine: bool | None = None
    ) -> list[DogDetection]:
        """Find dogs in a whole frame, best first.

        The detector's boxes are coarse (a 256 px view of the frame). With ``refine``, each dog's
        keypoints are read a second time in a box around its confident first-pass keypoints, widened
        by the margins fitted on the training labels (``box_from_keypoints`` in the manifest); that
        box is the one returned, and a refined box overlapping a better one (IoU > 0.5) is dropped.
        It costs one more keypoint pass per dog. When no candidate reaches the threshold and the
        manifest sets ``inference.whole_frame_fallback``, the whole frame is tried as a last
        candidate (:meth:`whole_frame_candidate`): close-ups fill the frame and give weak peaks.
        With ``inference.whole_frame_always`` too, it is scored on every image and reported beside
        the passing candidates (a close-up's peaks may pass on part of the dog); it costs three
        network passes per image. When still no dog is found in a frame larger than the training
        images, the detector looks again in its :meth:`close_view` (a small dog in a phone's frame).

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB, any size.
        max_dogs : int
            Maximum number of dogs returned.
        min_score : float or None
            Minimum dog score; None -> the model's fitted ``score_threshold``.
        refine : bool or None
            Refine boxes from keypoints; None -> when the manifest gives ``box_from_keypoints``.

        Returns
        -------
        list of DogDetection
            Sorted by score, empty when no dog.
        """
        threshold = self.score_threshold if min_score is None else min_score
        refine = refine or (refine is None and self.box_refinement is not None)
        # The whole-frame candidate's raw score comes from every peak, not only those that could pass.
        peaks = self.detector_peaks(image_rgb, max_dogs)
        found = self._passing_dogs(image_rgb, max_dogs, threshold, peaks, refine)
        if self.whole_frame_fallback and (not found or self.whole_frame_always):
            box, whole_score = self._scored_whole_frame(image_rgb, peaks, refine)
            if whole_score >= threshold:  # the dog is read only in a whole frame that passes
                whole = self.keypoints_in_boxes(image_rgb, box[None], np.array([whole_score], np.float32))[0]
                found = sorted([*found, whole], key=lambda d: -d.score)
                found = (suppress_duplicates(found) if refine else found)[:max_dogs]
        closer = self.close_view(image_rgb.shape)
        if not found and closer is not None:  # a small dog in a large frame is only a few cells wide
            found = self._passing_dogs(
                image_rgb, max_dogs, threshold, self.detector_peaks(image_rgb, max_dogs, closer), refine
            )
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
        boxes, raw, dog_prob = self.candidates(image_rgb, max_dogs, threshold, peaks)
        if not len(boxes):
            return []
        score = self.combined_score(raw, dog_prob)
        keep = np.flatnonzero(score >= threshold)
        keep = keep[np.argsort(-score[keep], kind="stable")]
        if not len(keep):
            return []
        found = self.read_dogs(image_rgb, boxes[keep], score[keep], refine)
        return suppress_duplicates(found) if refine else found

    def whole_frame_candidate(
        self, image_rgb: np.ndarray, peaks: tuple[np.ndarray, np.ndarray] | None = None, refine: bool = True
    ) -> DogDetection:
        """The dog read in the whole frame, scored like a detector candidate.

        For close-ups, where the detector's peaks are weak: keypoints in the whole frame, the box
        refined around them (as in :meth:`place_boxes`), the verifier on that box. Its raw detector
        score is that of the best peak overlapping the box (IoU >= 0.5), else ``candidate_floor``.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        peaks : (boxes, raw) or None
            Detector peaks of this frame (:meth:`candidates`); None runs the detector.
        refine : bool
            Refine the whole-frame box from the keypoints.
        """
        box, score = self._scored_whole_frame(image_rgb, peaks, refine)
        return self.keypoints_in_boxes(image_rgb, box[None], np.array([score], np.float32))[0]

    def _scored_whole_frame(
        self, image_rgb: np.ndarray, peaks: tuple[np.ndarray, np.ndarray] | None, refine: bool
    ) -> tuple[np.ndarray, float]:
        """The whole-frame candidate's box (4,) float32 and dog score, before its dog is read."""
        box, raw, dog_prob = self.whole_frame_features(image_rgb, peaks, refine)
        return box, float(self.combined_score(np.array([raw]), None if dog_prob is None else dog_prob[None])[0])

    def whole_frame_features(
        self, image_rgb: np.ndarray, peaks: tuple[np.ndarray, np.ndarray] | None = None, refine: bool = True
    ) -> tuple[np.ndarray, float, np.ndarray | None]:
        """The whole-frame box of :meth:`whole_frame_candidate` (4,) float32, its raw score and verifier outputs (V,).

        Only the box network runs (to place the box); the dog is not read in it.
        """
        h, w = image_rgb.shape[:2]
        box = np.array([[0, 0, w - 1, h - 1]], np.float32)
        if refine:
            box = self.place_boxes(image_rgb, box)
        boxes, raw = peaks if peaks is not None else self.detector_peaks(image_rgb, 5)
        overlap = box_iou(np.asarray(boxes, np.float32).reshape(-1, 4), box)[:, 0]
        best_raw = max([self.candidate_floor, *(float(r) for r, o in zip(raw, overlap, strict=True) if o >= 0.5)])
        dog_prob = self._verify(image_rgb, box)[0] if self._verifier is not None else None
        return box[0], best_raw, dog_prob

    def read_dogs(
        self, image_rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, refine: bool = True
    ) -> list[DogDetection]:
        """Keypoints of the dogs in candidate boxes, each box first refined from keypoints (``refine``).

        With ``refine`` the boxes are placed by :meth:`place_boxes` and the keypoint network reads
        the dogs in them: two keypoint passes per box. Without, one pass in the boxes as given.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        boxes : np.ndarray
            (N, 4) float32 xyxy candidate boxes in image pixels.
        scores : np.ndarray
            (N,) scores copied into the results.
        refine : bool
            Place the boxes from the box network's keypoints first.

        Returns
        -------
        list of DogDetection
            One per box, in order, with its (refined) box.
        """
        if len(boxes) == 0:
            return []
        if refine:
            boxes = self.place_boxes(image_rgb, boxes)
        return self.keypoints_in_boxes(image_rgb, boxes, scores)

    def place_boxes(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Boxes fitted around the confident keypoints read in candidate boxes: (N, 4) float32 xyxy.

        The keypoints come from the box keypoint network (``files.box_keypoints`` or an ensemble's
        first member), else from the keypoint network. A box with fewer than ``min_points``
        keypoints at ``min_confidence`` stays as it is. Margins and cut-offs: ``box_from_keypoints``
        in the manifest, else :data:`DEFAULT_BOX_REFINEMENT`.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes.copy()
        first = self.keypoints_in_boxes(image_rgb, boxes, np.zeros(len(boxes), np.float32), session=self._box_kp)
        out = boxes.copy()
        for i, dog in enumerate(first):
            box = self._box_around(dog.keypoints, image_rgb.shape)
            if box is not None:
                out[i] = box
        return out

    def _box_around(self, keypoints: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
        """The refined box around one dog's (20, 3) keypoints, or None when too few are confident."""
        cfg = {**DEFAULT_BOX_REFINEMENT, **(self.box_refinement or {})}
        margins = tuple(float(m) for m in cfg["margins"])
        return box_around_keypoints(keypoints, margins, shape, float(cfg["min_confidence"]), int(cfg["min_points"]))

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
            (N, V) float32 verifier outputs of each box (:meth:`_verify`; None without a verifier).
        """
        boxes, raw = peaks if peaks is not None else self.detector_peaks(image_rgb, max_dogs)
        if self._verifier is None or len(boxes) == 0:
            return boxes, raw, None
        if min_score is None:
            return boxes, raw, self._verify(image_rgb, boxes)
        weights = np.array(self.calibration[2], np.float64)
        best_p = np.where(weights > 0, self.verifier_ceiling, 1.0 - self.verifier_ceiling)
        bound = self.combined_score(raw, np.tile(best_p, (len(raw), 1)).astype(np.float32))
        # At most max_dogs peaks come from the detector, so a bound below min_score is the only
        # reason to skip one; the others are verified in one batch (3 vs 5 ms a crop).
        done = np.flatnonzero(bound >= min_score)
        if len(done) == 0:
            return boxes[:0], raw[:0], np.zeros(0, np.float32)
        return boxes[done], raw[done], self._verify(image_rgb, boxes[done])

    def confirm_dog(self, image_rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray | None:
        """The detector's box of a dog followed by its keypoints, or None when the detector does not see it there.

        A cheap check for trackers (one detector pass; no verifier, no keypoint pass): the dog is
        confirmed when a detector peak overlaps the box fitted around its confident keypoints (as in
        :meth:`place_boxes`) with IoU >= ``confirm_iou``. The verifier is not asked again: a tracker
        verified the dog when it first found it. The pass runs in the ``det_size`` view, or in the
        frame's :meth:`close_view` when the dog is shorter than ``confirm_min_dog_px`` there.

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
        box = self._box_around(np.asarray(keypoints, np.float32), image_rgb.shape)
        if box is None:
            return None
        seen = float(max(box[2] - box[0], box[3] - box[1])) * self.det_size / max(image_rgb.shape[:2])
        closer = self.close_view(image_rgb.shape) if seen < self.confirm_min_dog_px else None
        peaks, _ = self.detector_peaks(image_rgb, 5, closer)
        if len(peaks) == 0:
            return None
        overlap = box_iou(peaks, box[None])[:, 0]
        best = int(np.argmax(overlap))
        return peaks[best].copy() if overlap[best] >= self.confirm_iou else None

    def close_view(self, shape: tuple[int, ...]) -> int | None:
        """Longer side (pixels) of the detector's closer look at a large frame of this ``shape`` (H, W, ...).

        The detector was trained on images of at most 640 px seen in a ``det_size`` (256) view. A
        phone's 720p or 1080p frame in that view shows a dog a tenth of its width as a few cells, and
        the detector often misses it. For a frame larger than ``det_size * det_max_reduction``, the
        closer view reduces it by ``det_max_reduction`` at most, up to ``det_max_size``; None for
        smaller frames (or a manifest without those keys). It is only a second look: in it a dog
        filling much of the frame is larger than any the detector was trained on.
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
        det = self._run_detector(_nchw(canvas[None]))[0]
        found = decode_detections(det, max_dogs, self.candidate_floor)
        boxes = found[:, :4] * np.array([sx, sy, sx, sy], np.float32)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w - 1)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h - 1)
        return boxes.astype(np.float32), found[:, 4].astype(np.float32)

    def _verify(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Verifier outputs (N, V) float32 of each box's square crop.

        V = 1 (the ImageNet dog-breed mass) or 2 (and the trained probe's probability of a whole dog).
        """
        size = self.verify_size
        crops = np.stack([verifier_crop(image_rgb, b, size, self.verify_crop) for b in boxes])
        return _present(self._verifier, "verifier").run(_nchw(crops)).reshape(len(boxes), -1).astype(np.float32)

    def combined_score(self, raw: np.ndarray, dog_prob: np.ndarray | None) -> np.ndarray:
        """Calibrated dog score of candidates: ``sigmoid(a*logit(raw) + logit(dog_prob) @ c + b)`` (float32).

        ``raw``: (N,) detector peaks; ``dog_prob``: (N, V) verifier outputs, (N,) when V = 1, or None.
        """
        a, b, c = self.calibration
        z = a * _logit(raw) + b
        if dog_prob is not None and any(c):
            probs = np.asarray(dog_prob).reshape(len(z), -1)
            if probs.shape[1] != len(c):
                raise ValueError(f"the verifier gives {probs.shape[1]} outputs, the score calibration weighs {len(c)}")
            z = z + _logit(probs) @ np.array(c, np.float64)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

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
        return self.keypoints_in_boxes(image_rgb, box, np.array([score], np.float32))[0]

    def keypoints_in_boxes(
        self, image_rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, session: Network | None = None
    ) -> list[DogDetection]:
        """Keypoints of the dogs in several boxes, one batched pass of the keypoint network.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        boxes : np.ndarray
            (N, 4) float32 xyxy boxes in input-image pixels.
        scores : np.ndarray
            (N,) scores copied into the results.
        session : Network or None
            The network to run (internal: the box keypoint network); None -> the keypoint network.

        Returns
        -------
        list of DogDetection
            One per box, in order, each with its given box.
        """
        size = self.kp_size
        mats = [crop_matrix(b, size) for b in boxes]
        crops = np.stack([warp_square(image_rgb, m, size) for m in mats])
        kp = self._run_keypoints(_nchw(crops), session)
        out = []
        for i, m in enumerate(mats):
            pts = decode_heatmaps(kp[i])
            xy = from_cells(pts[:, :2])  # crop pixels
            inv = cv2.invertAffineTransform(m)
            pts[:, :2] = xy @ inv[:, :2].T + inv[:, 2]
            out.append(DogDetection(boxes[i].astype(np.float32), float(scores[i]), pts.astype(np.float32)))
        return out


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
