"""Reading a dog's keypoints in boxes: crop, keypoint network, heatmap decoding, box refitting."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from vision.model.decode import decode_heatmaps, mirror_heatmaps, nchw
from vision.model.engine import Network
from vision.model.geometry import box_around_keypoints, crop_matrix, from_cells, warp_square
from vision.model.manifest import DEFAULT_BOX_REFINEMENT, ModelManifest


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


def present(network: Network | None, role: str) -> Network:
    """``network``, or a one-line ``RuntimeError`` when the model was built without that network."""
    if network is None:
        raise RuntimeError(f"this dog pose model has no {role} network")
    return network


class KeypointReader:
    """The keypoint network (and the box keypoint network) applied to box crops.

    Parameters
    ----------
    keypoints : Network or None
        (N, 3, S, S) float32 crops -> (N, 20, S/4, S/4) heatmaps.
    box_keypoints : Network or None
        The first pass that places refined boxes (:meth:`place_boxes`); None -> ``keypoints``.
    manifest : ModelManifest
        Gives ``kp_size``, ``flip_test`` and ``box_refinement``.

    Attributes
    ----------
    size : int
        Side (px) of the square crop.
    flip_test : bool
        Average each crop's heatmaps with those of its mirror image (left/right channels swapped).
    box_refinement : dict or None
        Margins and cut-offs of :meth:`place_boxes` (None: :data:`DEFAULT_BOX_REFINEMENT`).
    """

    def __init__(self, keypoints: Network | None, box_keypoints: Network | None, manifest: ModelManifest) -> None:
        self.network = keypoints
        self.box_network = box_keypoints if box_keypoints is not None else keypoints
        self.size = manifest.kp_size
        self.flip_test = manifest.flip_test
        self.box_refinement: dict[str, Any] | None = manifest.box_refinement

    def heatmaps(self, batch: np.ndarray, network: Network | None = None) -> np.ndarray:
        """(N, 3, S, S) float32 crops -> (N, 20, S/4, S/4) heatmaps (flip-averaged when ``flip_test``).

        ``network``: the network to run; None -> the keypoint network (not the box one).
        """
        net = present(self.network if network is None else network, "keypoint")
        if not self.flip_test:
            return net.run(batch)
        n = len(batch)
        both = net.run(np.concatenate([batch, batch[..., ::-1]]))
        return 0.5 * (both[:n] + mirror_heatmaps(both[n:]))

    def read(
        self, image_rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, first_pass: bool = False
    ) -> list[DogDetection]:
        """Keypoints of the dogs in several boxes, one batched network pass.

        Parameters
        ----------
        image_rgb : np.ndarray
            HxWx3 uint8 RGB.
        boxes : np.ndarray
            (N, 4) float32 xyxy boxes in input-image pixels.
        scores : np.ndarray
            (N,) scores copied into the results.
        first_pass : bool
            Run the box keypoint network instead of the keypoint network.

        Returns
        -------
        list of DogDetection
            One per box, in order, each with its given box.
        """
        size = self.size
        mats = [crop_matrix(b, size) for b in boxes]
        crops = np.stack([warp_square(image_rgb, m, size) for m in mats])
        kp = self.heatmaps(nchw(crops), self.box_network if first_pass else None)
        out = []
        for i, m in enumerate(mats):
            pts = decode_heatmaps(kp[i])
            xy = from_cells(pts[:, :2])  # crop pixels
            inv = cv2.invertAffineTransform(m)
            pts[:, :2] = xy @ inv[:, :2].T + inv[:, 2]
            out.append(DogDetection(boxes[i].astype(np.float32), float(scores[i]), pts.astype(np.float32)))
        return out

    def box_around(self, keypoints: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
        """The refined box (4,) float32 around one dog's (20, 3) keypoints, or None when too few are confident."""
        cfg = {**DEFAULT_BOX_REFINEMENT, **(self.box_refinement or {})}
        margins = tuple(float(m) for m in cfg["margins"])
        return box_around_keypoints(keypoints, margins, shape, float(cfg["min_confidence"]), int(cfg["min_points"]))

    def place_boxes(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Boxes fitted around the confident keypoints read in candidate boxes: (N, 4) float32 xyxy.

        The keypoints come from the box keypoint network. A box with fewer than ``min_points``
        keypoints at ``min_confidence`` stays as it is (see :meth:`box_around`).
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return boxes.copy()
        first = self.read(image_rgb, boxes, np.zeros(len(boxes), np.float32), first_pass=True)
        out = boxes.copy()
        for i, dog in enumerate(first):
            box = self.box_around(dog.keypoints, image_rgb.shape)
            if box is not None:
                out[i] = box
        return out

    def read_dogs(
        self, image_rgb: np.ndarray, boxes: np.ndarray, scores: np.ndarray, refine: bool = True
    ) -> list[DogDetection]:
        """Keypoints of the dogs in candidate boxes, each box first refitted (:meth:`place_boxes`) with ``refine``.

        With ``refine``: two keypoint passes per box (the box network's, then the keypoint network's
        in the refitted box). Without: one pass in the boxes as given. One result per box, in order.
        """
        if len(boxes) == 0:
            return []
        if refine:
            boxes = self.place_boxes(image_rgb, boxes)
        return self.read(image_rgb, boxes, scores)
