"""Export a trained checkpoint to ONNX (``models/dog_pose.onnx`` + ``models/dog_pose.json``).

Usage: ``python -m vision.model.export [--checkpoint checkpoints/best.pt] [--out models/dog_pose.onnx]``
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

from vision.anatomy import CANONICAL_KEYPOINTS

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"
DET_SIZE = 256
KP_SIZE = 192


def sidecar(summary: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metadata written next to the ONNX file."""
    return {
        "name": "hindsight-dog-pose",
        "version": VERSION,
        "input": {
            "name": "image",
            "format": "float32 RGB 0-255, NCHW, H and W multiples of 32 (normalisation inside the graph)",
            "det_size": DET_SIZE,
            "kp_size": KP_SIZE,
            "crop_pad": 1.25,
            "pad_value": 114,
        },
        "outputs": {
            "det": "(N, 5, H/4, W/4): dog score (sigmoid), offset x, offset y, log width, log height (cells)",
            "kp": "(N, 20, H/4, W/4): keypoint heatmaps, CANONICAL_KEYPOINTS order",
        },
        "stride": 4,
        "keypoints": list(CANONICAL_KEYPOINTS),
        "training": summary or {},
        "metrics": metrics or {},
    }


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def export_onnx(
    net: Any,
    out: str | Path = REPO / "models" / "dog_pose.onnx",
    summary: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Export a ``DogPoseNet`` to ONNX atomically, plus its JSON sidecar.

    Parameters
    ----------
    net : DogPoseNet
        Trained network (not modified: a float32 eval-mode copy is exported).
    out : str or Path
        Destination ``.onnx``; the sidecar gets the same stem with ``.json``.
    summary, metrics : dict or None
        Training summary and validation figures for the sidecar.

    Returns
    -------
    Path
        The ONNX path.
    """
    import torch

    from vision.model.network import ExportWrapper

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = ExportWrapper(copy.deepcopy(net).float().eval()).to(memory_format=torch.contiguous_format)
    tmp = out.with_name(out.stem + ".tmp.onnx")
    dummy = torch.zeros(1, 3, KP_SIZE, KP_SIZE)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (dummy,),
            str(tmp),
            dynamo=False,
            input_names=["image"],
            output_names=["det", "kp"],
            dynamic_axes={
                "image": {0: "n", 2: "h", 3: "w"},
                "det": {0: "n", 2: "h4", 3: "w4"},
                "kp": {0: "n", 2: "h4", 3: "w4"},
            },
            opset_version=17,
        )
    os.replace(tmp, out)
    meta = sidecar(summary, metrics)
    _atomic_write_bytes(out.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    return out


def fit_score_calibration(onnx_path: Path, data_root: Path, n_images: int = 400, seed: int = 0) -> dict:
    """Fit a Platt scaling of the raw dog-centre peak scores on *training* images.

    A peak is a positive when its box overlaps a labelled dog with IoU >= 0.5 (one peak per dog);
    ``a, b`` of ``sigmoid(a * logit(raw) + b)`` are fitted by Newton's method on the log-loss.

    Returns
    -------
    dict
        ``{"a", "b", "n_peaks", "n_positive", "n_images"}``.
    """
    import numpy as np

    from vision.model.dataset import load_animalpose, read_rgb
    from vision.model.detector import DogPoseModel
    from vision.model.metrics import box_iou

    model = DogPoseModel.load(onnx_path)
    model.calibration = (1.0, 0.0)
    train = [r for r in load_animalpose(data_root) if r.split == "train"]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(n_images, len(train)), replace=False)
    zs, ys = [], []
    for i in pick:
        rec = train[int(i)]
        dets = model.detect(read_rgb(data_root / "images" / rec.file), max_dogs=10, min_score=0.01)
        if not dets:
            continue
        gt = np.array([x.bbox for x in rec.instances if x.species == "dog"], np.float32).reshape(-1, 4)
        iou = box_iou(np.array([d.bbox_xyxy for d in dets]), gt)
        used: set[int] = set()
        for j, d in enumerate(dets):
            pos = False
            if iou.shape[1]:
                g = int(np.argmax(iou[j]))
                if iou[j, g] >= 0.5 and g not in used:
                    used.add(g)
                    pos = True
            p = min(max(d.score, 1e-6), 1 - 1e-6)
            zs.append(np.log(p / (1 - p)))
            ys.append(float(pos))
    z, y = np.array(zs), np.array(ys)
    w = np.array([1.0, 0.0])
    x = np.stack([z, np.ones_like(z)], axis=1)
    for _ in range(50):
        pr = 1 / (1 + np.exp(-(x @ w)))
        grad = x.T @ (pr - y)
        hess = x.T @ (x * (pr * (1 - pr))[:, None]) + 1e-6 * np.eye(2)
        w = w - np.linalg.solve(hess, grad)
    return {
        "a": float(w[0]),
        "b": float(w[1]),
        "n_peaks": int(len(y)),
        "n_positive": int(y.sum()),
        "n_images": int(len(pick)),
        "fitted_on": "Animal-Pose train split",
    }


def main(argv: list[str] | None = None) -> None:
    """CLI: export a checkpoint (and optionally fit the score calibration)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default=str(REPO / "checkpoints" / "best.pt"))
    ap.add_argument("--out", default=str(REPO / "models" / "dog_pose.onnx"))
    ap.add_argument("--calibrate-only", action="store_true", help="only fit the score calibration")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "animalpose")
    args = ap.parse_args(argv)
    if args.calibrate_only:
        out = Path(args.out)
        cal = fit_score_calibration(out, args.data)
        meta = json.loads(out.with_suffix(".json").read_text())
        meta["score_calibration"] = cal
        _atomic_write_bytes(out.with_suffix(".json"), json.dumps(meta, indent=2).encode())
        print(f"calibration: {cal}")
        return
    import torch

    from vision.model.network import DogPoseNet

    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    net = DogPoseNet(pretrained=False)
    net.load_state_dict(ckpt["model"])
    path = export_onnx(net, args.out, ckpt.get("summary"), ckpt.get("metrics"))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
