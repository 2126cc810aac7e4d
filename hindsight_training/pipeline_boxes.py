"""The boxes the shipped pipeline reads each labelled animal in, for training keypoint networks on them.

A keypoint network is trained on crops of jittered ground-truth boxes, but at run time it reads a dog
in the box :meth:`KeypointReader.place_boxes` fits around the box network's keypoints. Those boxes are
tighter than the labels (median longer side 0.95 of the label's on validation dogs, 5% below 0.71)
and miss what the box network missed, so a network fine-tuned only on label boxes can gain with
them and lose in the pipeline (``models/HISTORY.md``, trials 18 and 21).

:func:`pipeline_boxes` records, for every labelled animal, the box the pipeline would read it in:
the detector candidate matched to it one to one (best overlaps first, as
:func:`~hindsight_training.metrics.match_by_iou` matches for the evaluation; IoU >= ``min_iou``) placed by
the box network, else (no such candidate, as for most cats and horses, which the detector treats as
background) its label box placed the same way. ``python -m hindsight_training.train --pipeline-boxes FILE``
then crops from them.

Usage: ``python -m hindsight_training.pipeline_boxes [--model vision/model/weights/dog_pose.json] [--out FILE]``
(default ``<checkpoint_root>/pipeline_boxes.json``; about 2 minutes for the 3,309 images).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hindsight_training import dataset as ds
from hindsight_training.metrics import match_by_iou
from vision.model.detector import DogPoseModel
from vision.model.geometry import box_iou, read_rgb

#: File format version of the saved boxes.
FORMAT = 1


class BoxPlacer(Protocol):
    """What :func:`pipeline_boxes` needs of a model (:class:`ModelBoxes` gives it for the shipped model)."""

    def candidates(
        self, image_rgb: np.ndarray, max_dogs: int = 5, min_score: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Candidate boxes (N, 4), raw scores (N,) and verifier outputs of a whole frame."""
        ...

    def place_boxes(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N, 4) fitted around the box network's keypoints read in candidate boxes."""
        ...


@dataclass(frozen=True)
class ModelBoxes:
    """The shipped model seen as a :class:`BoxPlacer`: its scorer's candidates and its reader's boxes."""

    model: DogPoseModel

    def candidates(
        self, image_rgb: np.ndarray, max_dogs: int = 5, min_score: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Candidate boxes (N, 4), raw scores (N,) and verifier outputs of a whole frame."""
        return self.model.scorer.candidates(image_rgb, max_dogs, min_score)

    def place_boxes(self, image_rgb: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Boxes (N, 4) fitted around the box network's keypoints read in candidate boxes."""
        return self.model.reader.place_boxes(image_rgb, boxes)


@dataclass(frozen=True)
class PipelineBox:
    """The box one labelled animal is read in.

    Attributes
    ----------
    box : np.ndarray
        (4,) float32 xyxy in image pixels.
    from_detector : bool
        Placed from a detector candidate (else from the label box).
    """

    box: np.ndarray
    from_detector: bool


def pipeline_boxes_of_image(
    model: BoxPlacer, image_rgb: np.ndarray, label_boxes: np.ndarray, min_iou: float = 0.3
) -> list[PipelineBox]:
    """Pipeline boxes of the labelled animals of one image, in label order.

    Parameters
    ----------
    model : BoxPlacer
        Gives detector candidates and places boxes.
    image_rgb : np.ndarray
        HxWx3 uint8 RGB.
    label_boxes : np.ndarray
        (N, 4) xyxy label boxes.
    min_iou : float
        Least IoU of a detector candidate with a label box to stand for it.

    Returns
    -------
    list of PipelineBox
        One per label box.
    """
    labels = np.asarray(label_boxes, np.float32).reshape(-1, 4)
    if len(labels) == 0:
        return []
    cand, _, _ = model.candidates(image_rgb, 5, None)
    cand = np.asarray(cand, np.float32).reshape(-1, 4)
    start = labels.copy()
    from_detector = np.zeros(len(labels), bool)
    if len(cand):
        match = match_by_iou(cand, labels)  # one to one, as the evaluation matches detections
        iou = box_iou(cand, labels)
        for g, c in enumerate(match):
            if c >= 0 and iou[c, g] >= min_iou:
                start[g] = cand[c]
                from_detector[g] = True
    placed = model.place_boxes(image_rgb, start)
    return [PipelineBox(placed[i].astype(np.float32), bool(from_detector[i])) for i in range(len(labels))]


def pipeline_boxes(model: BoxPlacer, records: list[ds.Record], image_dir: Path, log: Any = None) -> dict[str, Any]:
    """Pipeline boxes of every labelled animal: ``{"format", "boxes": {file: [[x0, y0, x1, y1, from_detector], ...]}}``.

    The lists follow each record's instances.
    """
    out: dict[str, list[list[float]]] = {}
    t = time.time()
    for n, rec in enumerate(records):
        if not rec.instances:
            continue
        img = read_rgb(image_dir / rec.file)
        found = pipeline_boxes_of_image(model, img, np.stack([i.bbox for i in rec.instances]))
        out[rec.file] = [[*(round(float(v), 2) for v in p.box), float(p.from_detector)] for p in found]
        if log is not None and (n + 1) % 500 == 0:
            log(f"{n + 1}/{len(records)} images, {time.time() - t:.0f}s", flush=True)
    return {"format": FORMAT, "boxes": out}


def load_pipeline_boxes(path: str | Path) -> dict[str, np.ndarray]:
    """Saved pipeline boxes: file -> (N, 5) float32 (xyxy, from_detector) in instance order."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("boxes"), dict):
        raise ValueError(f"{path}: not a pipeline-boxes file of format {FORMAT}")
    return {f: np.asarray(b, np.float32).reshape(-1, 5) for f, b in data["boxes"].items()}


def main(argv: list[str] | None = None) -> None:
    """Write the pipeline boxes of the Animal-Pose images (train and val splits)."""
    from hindsight_training.paths import checkpoint_root, default_data_root

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="model manifest (default: the shipped model)")
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out = args.out or checkpoint_root() / "pipeline_boxes.json"
    try:
        model = DogPoseModel.load(args.model)
        records = ds.load_animalpose(args.data)
    except (OSError, ValueError) as exc:  # no model or no Animal-Pose data where given
        raise SystemExit(f"error: {exc}") from None
    result = pipeline_boxes(ModelBoxes(model), records, args.data / "images", log=print)
    result["model"] = str(args.model or "shipped")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result))
    n = sum(len(b) for b in result["boxes"].values())
    print(f"{out}: {n} animals in {len(result['boxes'])} images")


if __name__ == "__main__":
    main()
