"""Export trained checkpoints as a model: ONNX networks and the ``dog_pose.json`` manifest beside them.

Usage: ``python -m hindsight_training.export [--detector CHECKPOINTS/detector/best.pt]
[--keypoints CHECKPOINTS/keypoints/best.pt [MORE ...]] [--out vision/model/weights/dog_pose.json] [--calibrate-only]
[--score-from MANIFEST]`` (CHECKPOINTS: ``hindsight_training.paths.checkpoint_root``).

The score calibration, its threshold and the box margins are fitted after the export (about 6 minutes),
unless ``--score-from`` names a model with the same detector, verifier and box network: its fits hold
unchanged (:func:`with_score_of`).

Several ``--keypoints`` make one keypoint network of them, the mean of their heatmaps
(:func:`keypoint_ensemble`): still one file and one pass for the inference code.

``--detector`` / ``--keypoints`` also take a model manifest (e.g. the shipped
``vision/model/weights/dog_pose.json``): that network's ONNX file is copied byte for byte, e.g. to ship a new
keypoint network with the current detector (quantizing an int8 network again would move its outputs).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hindsight_training.dataset import Record, in_score_holdout, load_animalpose
from hindsight_training.paths import checkpoint_root, default_data_root, shipped_manifest
from hindsight_training.verifier import PROBE_KIND
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.model.geometry import VERIFY_CROP, box_iou, read_rgb

VERSION = "0.7.2"
DET_SIZE = 256
#: Largest reduction of a frame in the detector's view (training images: 640 px in a 256-px view) and
#: the view's largest side (``DogPoseModel.close_view``).
DET_MAX_REDUCTION = 2.5
DET_MAX_SIZE = 512
KP_SIZE = 192
UNTRAINED_VERIFIER = "untrained: ImageNet probability mass on the dog breeds"


def trained_crop_size(keypoints: dict[str, Any] | None) -> int:
    """Keypoint crop side of a training summary: the last crop size trained (``KP_SIZE`` when unknown)."""
    sizes = (keypoints or {}).get("crop_sizes") or [KP_SIZE]
    return int(sizes[-1])


def manifest(
    detector: dict[str, Any] | None = None,
    keypoints: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    verifier: dict[str, Any] | None = None,
    box_keypoints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model manifest (``dog_pose.json``): files, input conventions, training summaries, metrics.

    ``box_keypoints``: training summary of a separate network that places the boxes
    (``files.box_keypoints``). Else a keypoint ensemble (``keypoints`` lists ``members``) gets
    ``inference.box_keypoints_output``: its first member alone places them (see ``vision.model.detector``).
    """
    ensemble = bool((keypoints or {}).get("members")) and box_keypoints is None
    files = {"detector": "dog_detector.onnx", "keypoints": "dog_keypoints.onnx", "verifier": "dog_verifier.onnx"}
    if box_keypoints is not None:
        files["box_keypoints"] = "dog_box_keypoints.onnx"
    return {
        "name": "hindsight-dog-pose",
        "version": VERSION,
        "files": files,
        "input": {
            "name": "image",
            "format": "float32 RGB 0-255, NCHW, H and W multiples of 32 (normalisation inside the graph)",
            "det_size": DET_SIZE,
            "det_max_reduction": DET_MAX_REDUCTION,
            "det_max_size": DET_MAX_SIZE,
            "kp_size": trained_crop_size(keypoints),
            "crop_pad": 1.25,
            "pad_value": 114,
            "verify_crop": VERIFY_CROP,
        },
        "outputs": {
            "det": "detector: (N, 5, H/4, W/4) dog score (sigmoid), offset x, offset y, log width, log height (cells)",
            "kp": "keypoints: (N, 20, S/4, S/4) keypoint heatmaps, CANONICAL_KEYPOINTS order"
            + ("; an ensemble's mean, and kp_box its first member's" if ensemble else ""),
            "dog_prob": (
                "verifier: (N, 2) ImageNet probability mass on the 118 dog breeds and the trained probe's "
                "probability of a whole dog, of a 224 px box crop"
                if verifier and verifier.get("kind") == PROBE_KIND
                else "verifier: (N,) ImageNet probability mass on the 118 dog breeds of a 224 px box crop"
            ),
        },
        "stride": 4,
        "keypoints": list(CANONICAL_KEYPOINTS),
        "training": {
            "detector": detector or {},
            "keypoints": keypoints or {},
            "verifier": verifier or {"kind": UNTRAINED_VERIFIER},
            **({"box_keypoints": box_keypoints} if box_keypoints is not None else {}),
        },
        "metrics": metrics or {},
        **({"inference": {"box_keypoints_output": "kp_box"}} if ensemble else {}),
    }


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _replace_weights(model: Any, path: Path, initializers: list[Any], nodes: list[Any]) -> Path:
    """Add the new initializers, put the decoding nodes first, check the graph and write it atomically."""
    import onnx

    graph = model.graph
    graph.initializer.extend(initializers)
    rest = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + rest)
    onnx.checker.check_model(model)
    _atomic_write_bytes(path, model.SerializeToString())
    return path


def store_weights_fp16(path: str | Path, min_size: int = 64) -> Path:
    """Rewrite an ONNX file with its float32 weights stored as float16 (halves the file).

    Each large float32 initializer becomes a float16 initializer plus a ``Cast`` back to float32;
    onnxruntime folds those casts when the session is created, so inference still runs in float32
    at the same speed (weights differ by float16 rounding, relative error < 1e-3).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    casts, halves = [], []
    for init in list(graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_size:
            continue
        half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__fp16")
        halves.append(half)
        casts.append(
            helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast")
        )
        graph.initializer.remove(init)
    return _replace_weights(model, path, halves, casts)


def store_weights_int8(path: str | Path, min_size: int = 64) -> Path:
    """Rewrite an ONNX file with its large float32 weights stored as int8 (a quarter of the file).

    Each initializer of ``min_size`` elements or more becomes int8 with one float32 scale per output
    channel (symmetric, ``max |w| / 127``; axis 0 of a Conv weight, 1 of a ConvTranspose weight) and a
    ``DequantizeLinear`` back to float32.
    Activations stay float: unlike :func:`quantize_int8` this changes only the stored weights (by at
    most half a quantization step each), not the arithmetic. ``vision.model.engine.weights_as_float32``
    expands them again when a session is created, so inference runs at float32 speed.
    """
    import onnx
    from onnx import helper, numpy_helper

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    # One scale per output channel: axis 0 of a Conv weight, axis 1 of a ConvTranspose weight.
    transposed = {n.input[1] for n in graph.node if n.op_type == "ConvTranspose" and len(n.input) > 1}
    decode, stored = [], []
    for init in list(graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_size or arr.ndim < 2:
            continue
        axis = 1 if init.name in transposed else 0
        peak = np.abs(np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)).max(axis=1)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        shape = [1] * arr.ndim
        shape[axis] = -1
        q = np.clip(np.round(arr / scale.reshape(shape)), -127, 127).astype(np.int8)
        q_init = numpy_helper.from_array(q, init.name + "__int8")
        s_init = numpy_helper.from_array(scale, init.name + "__scale")
        z_init = numpy_helper.from_array(np.zeros(len(scale), np.int8), init.name + "__zero")
        stored += [q_init, s_init, z_init]
        decode.append(
            helper.make_node(
                "DequantizeLinear",
                [q_init.name, s_init.name, z_init.name],
                [init.name],
                axis=axis,
                name=init.name + "__dequantize",
            )
        )
        graph.initializer.remove(init)
    return _replace_weights(model, path, stored, decode)


def quantize_int8(source: str | Path, out: str | Path, inputs: list[np.ndarray]) -> Path:
    """Write an int8 copy of a float32 ONNX network (static QDQ quantization, per-channel weights).

    Weights become int8 with one scale per output channel, activations uint8 with ranges measured
    on ``inputs`` (MinMax calibration): a quarter of the float32 size. ``vision.model.engine.open_network``
    runs such a file in float arithmetic, each activation clipped to its range, because onnxruntime's
    int8 kernels give CPU-dependent results (they saturate without VNNI). ``hindsight_training.recover``
    reads the weights back (``DequantizeLinear``) to continue training.

    Parameters
    ----------
    source : str or Path
        Float32 ONNX file with one input named ``image``.
    out : str or Path
        Written atomically.
    inputs : list of np.ndarray
        Calibration batches, each (1, 3, H, W) float32 as the network receives them.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class _Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._it, None)
            return None if batch is None else {"image": batch}

    out = Path(out)
    pre = out.with_name(out.stem + ".pre.onnx")
    tmp = out.with_name(out.stem + ".tmp.onnx")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Image sizes are dynamic: symbolic shape inference cannot finish, ONNX's own is enough.
            quant_pre_process(str(source), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(tmp),
                _Batches(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        os.replace(tmp, out)
    finally:
        pre.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return out


def calibration_inputs(data_root: Path, role: str, n: int = 64) -> list[np.ndarray]:
    """Training-split images prepared as ``role``'s network receives them, for :func:`quantize_int8`.

    ``detector``: whole images letterboxed to ``DET_SIZE``; ``keypoints`` / ``verifier``: crops
    (``KP_SIZE`` / 224 px) of labelled animals' boxes (dogs, and every fourth other animal), cut as
    each network's crops are (the verifier's as :data:`VERIFY_CROP` says).
    """
    from vision.model.geometry import crop_matrix, letterbox, verifier_crop, warp_square

    train = [r for r in load_animalpose(data_root) if r.split == "train"]
    out: list[np.ndarray] = []
    if role == "detector":
        for rec in train[:: max(1, len(train) // n)][:n]:
            canvas, _ = letterbox(read_rgb(data_root / "images" / rec.file), DET_SIZE)
            out.append(canvas)
    else:
        size = KP_SIZE if role == "keypoints" else 224
        animals = [(r, i) for r in train for i in r.instances]
        picked = [a for k, a in enumerate(animals) if a[1].species == "dog" or k % 4 == 0]
        for rec, inst in picked[:: max(1, len(picked) // n)][:n]:
            image = read_rgb(data_root / "images" / rec.file)
            if role == "verifier":
                out.append(verifier_crop(image, inst.bbox, size, VERIFY_CROP))
            else:
                out.append(warp_square(image, crop_matrix(inst.bbox, size), size))
    return [np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32) for x in out]


def _export(module: Any, out: Path, size: int, outputs: list[str]) -> None:
    """torch.onnx.export of a one-input module with dynamic batch and image size, written atomically."""
    import torch

    tmp = out.with_name(out.stem + ".tmp.onnx")
    dummy = torch.zeros(1, 3, size, size)
    axes = {"image": {0: "n", 2: "h", 3: "w"}} | {o: {0: "n", 2: "h4", 3: "w4"} for o in outputs}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (dummy,),
            str(tmp),
            dynamo=False,
            input_names=["image"],
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=17,
        )
    os.replace(tmp, out)


def export_keypoints_onnx(
    net: Any, out: str | Path, summary: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None
) -> Path:
    """Export a keypoint network to ONNX, with a ``.json`` of its training summary.

    A ``KeypointNet`` gives output ``kp``; a ``KeypointEnsemble`` ``kp`` (the mean) and ``kp_box``
    (its first member, see ``network.EnsembleExportWrapper``).
    """
    import torch

    from hindsight_training.network import EnsembleExportWrapper, KeypointEnsemble

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(net).float().eval().to(memory_format=torch.contiguous_format)
    outputs = ["kp"]
    if isinstance(model, KeypointEnsemble):
        model, outputs = EnsembleExportWrapper(model), ["kp", "kp_box"]
    _export(model, out, trained_crop_size(summary), outputs)
    _atomic_write_bytes(
        out.with_suffix(".json"), json.dumps({"training": summary, "metrics": metrics}, indent=2).encode()
    )
    return out


def export_detector_onnx(
    net: Any, out: str | Path, summary: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None
) -> Path:
    """Export the detection head of a ``DogPoseNet`` (output ``det``) to ONNX, with a ``.json`` summary."""
    import torch

    from hindsight_training.network import DetectorExportWrapper

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = DetectorExportWrapper(copy.deepcopy(net).float().eval()).to(memory_format=torch.contiguous_format)
    _export(model, out, DET_SIZE, ["det"])
    _atomic_write_bytes(
        out.with_suffix(".json"), json.dumps({"training": summary, "metrics": metrics}, indent=2).encode()
    )
    return out


def export_verifier_onnx(out: str | Path, probe: Any = None) -> Path:
    """Export the dog verifier in float32: the PyPI ImageNet EfficientNet-Lite0 and its output.

    Output ``dog_prob``: the untrained ImageNet probability mass on the dog breeds, (N,) (up to model
    0.5); with ``probe`` (a :class:`hindsight_training.verifier.Probe`) (N, 2), the probe's probability second.
    """
    import torch

    from hindsight_training.network import DogVerifier

    head = None if probe is None else (probe.weight, probe.bias)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.onnx")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            DogVerifier(pretrained=True, probe=head).eval(),
            (torch.zeros(1, 3, 224, 224),),
            str(tmp),
            dynamo=False,
            input_names=["image"],
            output_names=["dog_prob"],
            dynamic_axes={"image": {0: "n"}, "dog_prob": {0: "n"}},
            opset_version=17,
        )
    os.replace(tmp, out)
    return out


def score_holdout_of(training: dict[str, Any]) -> int:
    """Percent of training images the score is fitted on: those the detector or the verifier never saw.

    A detector trained with ``--score-holdout`` and a verifier probe (``hindsight_training.verifier``)
    leave the same images out (:func:`hindsight_training.dataset.in_score_holdout`); when both did,
    their percentages must agree. 0: neither held images out, the fit uses all training images.
    """
    det = int((training.get("detector") or {}).get("score_holdout_percent") or 0)
    ver = int((training.get("verifier") or {}).get("holdout_percent") or 0)
    if det and ver and det != ver:
        raise ValueError(f"the detector held out {det}% of the training images and the verifier {ver}%")
    return det or ver


def score_fit_images(data_root: Path, holdout_percent: int = 0) -> list[Record]:
    """Training images to fit the dog score on: the score hold-out if a network kept one, else all.

    ``holdout_percent`` comes from :func:`score_holdout_of`: the network (detector or verifier)
    that kept out the images :func:`hindsight_training.dataset.in_score_holdout` picks never saw them.
    """
    train = [r for r in load_animalpose(data_root) if r.split == "train"]
    if holdout_percent:
        train = [r for r in train if in_score_holdout(r.file, holdout_percent)]
    return train


def fit_score_calibration(
    manifest_path: Path, data_root: Path, n_images: int = 400, seed: int = 0, holdout_percent: int = 0
) -> dict:
    """Fit the dog score ``sigmoid(a*logit(raw) + logit(dog_prob) @ c + b)`` on training images.

    With ``holdout_percent`` (see :func:`score_fit_images`) only on the score hold-out.

    The candidates of each image are those :meth:`DogPoseModel.detect` can report: every detector
    peak (up to 5, raw score >= the candidate floor) and the whole-frame candidate, each with the
    box refined from its keypoints. A candidate is a positive when its refined box, the one
    reported, overlaps a labelled dog with IoU >= 0.5. a, b (and c, a weight per verifier output) are fitted
    on the log-loss with a small ridge (logistic regression, :func:`~hindsight_training.verifier.fit_logistic`).

    Returns
    -------
    dict
        ``{"a", "b", "c", "n_peaks", "n_positive", "n_images"}``.
    """
    from hindsight_training.verifier import fit_logistic
    from vision.model.detector import DogPoseModel
    from vision.model.scorer import logit

    model = DogPoseModel.load(manifest_path)
    train = score_fit_images(data_root, holdout_percent)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(n_images, len(train)), replace=False)
    feats, ys = [], []
    for i in pick:
        rec = train[int(i)]
        image = read_rgb(data_root / "images" / rec.file)
        boxes, raw, dog_prob = model.scorer.candidates(image, max_dogs=5)
        whole_box, whole_raw, whole_prob = model.scorer.whole_frame_features(image, model.reader, (boxes, raw))
        refined = np.concatenate([model.reader.place_boxes(image, boxes), whole_box[None]]).astype(np.float32)
        raws = [*(float(r) for r in raw), whole_raw]
        probs = [*(dog_prob if dog_prob is not None else []), whole_prob]  # (V,) arrays or None
        gt = np.array([x.bbox for x in rec.instances if x.species == "dog"], np.float32).reshape(-1, 4)
        iou = box_iou(refined, gt)
        for j in range(len(refined)):
            f = [float(logit(np.array(raws[j]))), 1.0]
            if probs[j] is not None:
                f.extend(float(v) for v in logit(np.asarray(probs[j])).reshape(-1))
            feats.append(f)
            ys.append(float(iou.shape[1] > 0 and iou[j].max() >= 0.5))
    x, y = np.array(feats), np.array(ys)
    w, _ = fit_logistic(x, y, ridge=1e-3, balanced=False, intercept=False)  # x carries the constant column
    return {
        "a": float(w[0]),
        "b": float(w[1]),
        # One weight per verifier output: a number for the breed mass alone (up to 0.5), else a list.
        "c": float(w[2]) if len(w) == 3 else [float(v) for v in w[2:]] if len(w) > 3 else 0.0,
        "n_peaks": int(len(y)),
        "n_positive": int(y.sum()),
        "n_images": int(len(pick)),
        "fitted_on": "Animal-Pose train split"
        + (f", the {holdout_percent}% score hold-out" if holdout_percent else "")
        + " (refined boxes, detector peaks and the whole frame)",
    }


def fit_box_margins(records: list[Record], species: str = "dog", min_labelled: int = 8) -> dict[str, Any]:
    """Margins of the labelled boxes around their labelled keypoints, for boxes refined from keypoints.

    Median over the training animals with at least ``min_labelled`` labelled keypoints of each side's
    gap, as a fraction of the keypoints' longer extent; left and right are pooled (a dog faces
    either way). The result is the manifest's ``inference.box_from_keypoints``.

    Parameters
    ----------
    records : list of dataset.Record
        Animal-Pose records; only the ``train`` split is used.
    """
    gaps = []
    for rec in records:
        if rec.split != "train":
            continue
        for inst in rec.instances:
            kp = inst.keypoints
            ok = kp[:, 2] > 0
            if inst.species != species or ok.sum() < min_labelled:
                continue
            (x0, y0), (x1, y1) = kp[ok, :2].min(axis=0), kp[ok, :2].max(axis=0)
            extent = max(x1 - x0, y1 - y0, 1.0)
            bx0, by0, bx1, by1 = inst.bbox
            gaps.append(((x0 - bx0) / extent, (y0 - by0) / extent, (bx1 - x1) / extent, (by1 - y1) / extent))
    if not gaps:
        raise ValueError(f"no training {species} with {min_labelled} labelled keypoints")
    from vision.model.manifest import DEFAULT_BOX_REFINEMENT

    g = np.asarray(gaps)
    side = float(np.median(np.concatenate([g[:, 0], g[:, 2]])))
    top, bottom = float(np.median(g[:, 1])), float(np.median(g[:, 3]))
    return {
        "margins": [round(side, 4), round(top, 4), round(side, 4), round(bottom, 4)],
        "min_confidence": DEFAULT_BOX_REFINEMENT["min_confidence"],
        "min_points": DEFAULT_BOX_REFINEMENT["min_points"],
        "fitted_on": f"{len(g)} training {species}s with >= {min_labelled} labelled keypoints",
    }


def reported_above(detections: list[Any], whole: Any, threshold: float, always: bool) -> list[Any]:
    """The dogs :meth:`DogPoseModel.detect` reports at ``threshold``, for the threshold fit.

    ``detections``: those of the detector's candidates (any score); ``whole``: the whole-frame
    candidate or None (no fallback). It is reported when it passes and no candidate does, or with
    ``always`` beside them (the duplicate rule is left out: a dog-free image counts once either way,
    and a dog counts as found by any box).
    """
    passed = [d for d in detections if d.score >= threshold]
    if whole is None or whole.score < threshold or (passed and not always):
        return passed
    return [*passed, whole]


def fit_score_threshold(
    manifest_path: Path,
    data_root: Path,
    n_images: int = 300,
    max_false_positive: float = 0.10,
    holdout_percent: int = 0,
) -> dict[str, Any]:
    """Pick the dog-score threshold on training images: the lowest with few false positives.

    The threshold is the lowest on a 0.02 grid at which at most ``max_false_positive`` of dog-free
    training images (cats, horses) get a detection; ``found`` is the share of single-dog training
    images with a detection >= it overlapping the dog (IoU >= 0.5). Unless ``holdout_percent``
    limits both sets to the score hold-out (:func:`score_fit_images`), the networks were
    trained on them, so both shares are optimistic. A false-positive cap rather than Youden's J (found
    minus false positives): J rises with how well the detector fits its training dogs, and pushes the
    threshold up with it.

    Returns
    -------
    dict
        ``{"threshold", "found", "false_positive", "n_dog_images", "n_negative_images"}``.
    """
    from vision.model.detector import DogPoseModel

    # Detections without the fallback; the whole-frame candidate is computed once, beside them.
    model = DogPoseModel.load(manifest_path, whole_frame_fallback=False)
    fallback = bool(model.meta.get("inference", {}).get("whole_frame_fallback", False))
    always = fallback and bool(model.meta.get("inference", {}).get("whole_frame_always", False))
    train = score_fit_images(data_root, holdout_percent)
    dogs = [r for r in train if len(r.instances) == 1 and r.instances[0].species == "dog"]
    negs = [r for r in train if not any(i.species == "dog" for i in r.instances)]
    dogs, negs = dogs[:: max(1, len(dogs) // n_images)], negs[:: max(1, len(negs) // n_images)]
    grid = np.round(np.arange(0.02, 0.9, 0.02), 2)

    def reported(image: np.ndarray) -> tuple[list[Any], Any]:
        """Detections down to 0.01 and the whole-frame candidate (reported when none passes, or always)."""
        dets = model.detect(image, max_dogs=5, min_score=0.01)
        return dets, (model.scorer.whole_frame_candidate(image, model.reader) if fallback else None)

    found = np.zeros((len(dogs), len(grid)), bool)
    for i, r in enumerate(dogs):
        dets, whole = reported(read_rgb(data_root / "images" / r.file))
        for k, t in enumerate(grid):
            boxes = np.array([d.bbox_xyxy for d in reported_above(dets, whole, t, always)], np.float32).reshape(-1, 4)
            found[i, k] = bool(len(boxes) and box_iou(boxes, r.instances[0].bbox[None]).max() >= 0.5)
    false_pos = np.zeros((len(negs), len(grid)), bool)
    for i, r in enumerate(negs):
        dets, whole = reported(read_rgb(data_root / "images" / r.file))
        false_pos[i] = [len(reported_above(dets, whole, t, always)) > 0 for t in grid]
    found, false_pos = found.mean(axis=0), false_pos.mean(axis=0)
    ok = false_pos <= max_false_positive  # false_pos falls as t rises
    k = int(np.argmax(ok)) if ok.any() else len(grid) - 1
    return {
        "threshold": float(grid[k]),
        "found": float(found[k]),
        "false_positive": float(false_pos[k]),
        "n_dog_images": len(dogs),
        "n_negative_images": len(negs),
        "max_false_positive": max_false_positive,
        "fitted_on": "Animal-Pose train split"
        + (f", the {holdout_percent}% score hold-out" if holdout_percent else "")
        + " (lowest threshold with at most max_false_positive)",
    }


def copy_shipped_network(manifest_path: Path, role: str, target: Path) -> dict[str, Any]:
    """Copy one network of a model manifest unchanged to ``target``; return its training summary."""
    from hindsight_training.recover import shipped_training
    from vision.model.manifest import model_files

    source = model_files(manifest_path)[role]
    if source.resolve() != target.resolve():
        _atomic_write_bytes(target, source.read_bytes())
    return shipped_training(manifest_path, role)


def copy_box_network(manifest_path: Path, target: Path) -> dict[str, Any]:
    """The network that places a shipped model's boxes, written to ``target`` as its own file; its summary.

    Its own box file (``files.box_keypoints``) is copied byte for byte; an ensemble's first member
    is cut out of the keypoint file (output ``kp_box``, the stored weights unchanged); otherwise the
    keypoint network is copied.
    """
    import onnx

    from hindsight_training.recover import shipped_training
    from vision.model.manifest import model_files

    meta = json.loads(manifest_path.read_text(encoding="utf-8"))
    files = model_files(manifest_path)
    if "box_keypoints" in files:
        return copy_shipped_network(manifest_path, "box_keypoints", target)
    output = (meta.get("inference") or {}).get("box_keypoints_output")
    if not output:
        return copy_shipped_network(manifest_path, "keypoints", target)
    model = onnx.load(str(files["keypoints"]))
    cut = onnx.utils.Extractor(model).extract_model([i.name for i in model.graph.input], [str(output)])
    _atomic_write_bytes(target, cut.SerializeToString())
    members = shipped_training(manifest_path, "keypoints").get("members") or [{}]
    return {"version": meta.get("version"), **members[0]}


def _load_checkpoint(role: str, source: Path) -> tuple[Any, dict[str, Any]]:
    """A network and its training summary from a training checkpoint ``.pt``."""
    import torch

    from hindsight_training.network import DogPoseNet, keypoint_network

    ckpt = torch.load(source, map_location="cpu", weights_only=False)
    net = DogPoseNet(pretrained=False) if role == "detector" else keypoint_network(ckpt.get("summary"))
    net.load_state_dict(ckpt["model"])
    return net, {**ckpt.get("summary", {}), "validation": ckpt.get("metrics", {})}


def shipped_member(source: Path) -> tuple[Path | None, int | None]:
    """A keypoint source as (model manifest, member): ``MODEL.json`` is every member, ``MODEL.json#K`` member K.

    A training checkpoint gives ``(None, None)``.
    """
    text = str(source)
    if "#" in source.name:
        path, _, member = text.rpartition("#")
        if path.endswith(".json") and member.isdigit():
            return Path(path), int(member)
    return (source, None) if source.suffix == ".json" else (None, None)


def keypoint_ensemble(sources: list[Path]) -> tuple[Any, dict[str, Any]]:
    """One :class:`~hindsight_training.network.KeypointEnsemble` from several keypoint networks, and its summary.

    Each source is a training checkpoint ``.pt`` or a model manifest (its shipped network, rebuilt
    from the ONNX file by ``hindsight_training.recover``; a shipped ensemble contributes each of its
    members, so every member weighs the same, or with ``#K`` after the manifest only member K). The
    summary lists the members' summaries under ``members`` (how the ensemble is rebuilt) and their
    common ``crop_sizes``.

    Raises
    ------
    ValueError
        When the members were trained at different crop sizes, or a manifest has no member K.
    """
    from hindsight_training.network import KeypointEnsemble
    from hindsight_training.recover import recover_network, shipped_training

    nets: list[Any] = []
    summaries: list[dict[str, Any]] = []
    for source in sources:
        manifest_path, member = shipped_member(source)
        if manifest_path is not None:
            shipped, shipped_summary = (
                recover_network(manifest_path, "keypoints"),
                shipped_training(manifest_path, "keypoints"),
            )
            if isinstance(shipped, KeypointEnsemble):
                members, member_summaries = list(shipped.members), shipped_summary["members"]
            else:
                members, member_summaries = [shipped], [shipped_summary]
            if member is not None and not 0 <= member < len(members):
                raise ValueError(f"{source}: the model has {len(members)} keypoint member(s), numbered from 0")
            chosen = range(len(members)) if member is None else [member]
            nets.extend(members[i] for i in chosen)
            summaries.extend(member_summaries[i] for i in chosen)
        else:
            net, summary = _load_checkpoint("keypoints", source)
            nets.append(net)
            summaries.append(summary)
    sizes = {trained_crop_size(s) for s in summaries}
    if len(sizes) != 1:
        raise ValueError(f"ensemble members were trained at different crop sizes: {sorted(sizes)}")
    summary = {
        "task": "keypoints",
        "ensemble": "mean of the members' heatmaps",
        "crop_sizes": [sizes.pop()],
        "sources": [s.name if shipped_member(s)[0] is not None else f"{s.parent.name}/{s.name}" for s in sources],
        "data": " + ".join(dict.fromkeys(str(s.get("data", "unknown")) for s in summaries)),
        "members": summaries,
    }
    return KeypointEnsemble(nets), summary


#: What :func:`with_score_of` carries over: fitted on the detector, verifier and box network alone.
SCORE_KEYS = ("score_calibration", "score_threshold", "score_threshold_fit", "inference")


def with_score_of(meta: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """A new manifest: ``meta`` with the dog score and box margins of ``source``.

    The score and the refined boxes come from the detector, the verifier and the network that places the
    boxes, not from the other keypoint members, so a model that changes only those members keeps them.

    Raises
    ------
    ValueError
        When ``source`` has no fitted score, or its detector, verifier or box network was trained apart from
        ``meta``'s (their training summaries differ).
    """
    missing = [k for k in SCORE_KEYS if k not in source]
    if missing:
        raise ValueError(f"the source manifest has no {', '.join(missing)}")
    problem = score_networks_mismatch(meta.get("training", {}), source.get("training", {}))
    if problem is not None:
        raise ValueError(problem)
    kept = {k: copy.deepcopy(source[k]) for k in SCORE_KEYS}
    # Which output places the boxes is this model's own (an ensemble's kp_box, or a separate box file).
    kept["inference"] = {k: v for k, v in kept["inference"].items() if k != "box_keypoints_output"}
    kept["inference"].update(meta.get("inference", {}))
    return {**copy.deepcopy(meta), **kept}


def score_networks_mismatch(training: dict[str, Any], source_training: dict[str, Any]) -> str | None:
    """Which network the score rests on differs between two manifests' ``training`` entries (``None``: none).

    The score rests on the detector, the verifier and the network that places the boxes.
    """
    for role in ("detector", "verifier"):
        if training.get(role) != source_training.get(role):
            return f"the {role} differs from the source manifest's: its score does not carry over"
    if _box_network_summary(training) != _box_network_summary(source_training):
        return "the network that places the boxes differs from the source manifest's"
    return None


def _box_network_summary(training: dict[str, Any]) -> Any:
    """Training summary of the network that places the boxes: its own file's, or the keypoint ensemble's first."""
    if training.get("box_keypoints"):
        return training["box_keypoints"]
    keypoints = training.get("keypoints", {})
    return (keypoints.get("members") or [keypoints])[0]


def score_source_problem(
    source: Path, detector: Path, verifier: Path | None, keypoints: list[Path], box_keypoints: Path | None
) -> str | None:
    """Why ``source``'s score would not carry over to the model these export arguments make (``None``: it would).

    Checked before anything is written: the detector and the verifier must be kept from manifests, and the
    box network must be ``box_keypoints``'s or the first keypoint source's (a manifest or its member 0). The
    training summaries the export would record are then compared as :func:`with_score_of` compares them.
    """
    from hindsight_training.recover import shipped_training

    for role, given in (("detector", detector), ("verifier", verifier)):
        if given is None or given.suffix != ".json":
            return f"the {role} must be kept from a model manifest"
    box_source, member = (box_keypoints, None) if box_keypoints is not None else shipped_member(keypoints[0])
    if box_source is None or member not in (None, 0):
        return "the first keypoint network places the boxes: it must be member 0 of a model manifest"
    assert verifier is not None  # checked above
    planned = {  # what copy_shipped_network and copy_box_network record
        "detector": shipped_training(detector, "detector"),
        "verifier": shipped_training(verifier, "verifier"),
        "box_keypoints": _box_network_summary(json.loads(box_source.read_text()).get("training", {})),
    }
    return score_networks_mismatch(planned, json.loads(source.read_text()).get("training", {}))


def main(argv: list[str] | None = None) -> None:
    """CLI: export both checkpoints, write the manifest and fit the score calibration."""
    ap = argparse.ArgumentParser(description=__doc__)
    keep = "; a model manifest (.json) keeps that model's network file unchanged"
    ap.add_argument(
        "--detector", type=Path, default=checkpoint_root() / "detector" / "best.pt", help="checkpoint" + keep
    )
    ap.add_argument(
        "--keypoints",
        type=Path,
        nargs="+",
        default=[checkpoint_root() / "keypoints" / "best.pt"],
        help="checkpoint" + keep + " (MODEL.json#K: its keypoint member K alone); several: one network, the mean "
        "of their heatmaps",
    )
    ap.add_argument(
        "--box-keypoints",
        type=Path,
        default=None,
        help="a model manifest whose box network (or keypoint network) places the boxes, kept as its own file",
    )
    ap.add_argument(
        "--keypoint-weights",
        choices=("fp16", "int8"),
        default="fp16",
        help="how the keypoint network's weights are stored (int8: a quarter of float32, float arithmetic)",
    )
    ap.add_argument(
        "--verifier",
        type=Path,
        default=None,
        help="verifier probe .npz (python -m hindsight_training.verifier)"
        + keep
        + "; default: the untrained dog-breed mass",
    )
    ap.add_argument("--out", type=Path, default=shipped_manifest(), help="manifest path")
    ap.add_argument("--calibrate-only", action="store_true", help="only refit the score calibration")
    ap.add_argument(
        "--score-from",
        type=Path,
        default=None,
        help="a model manifest whose score calibration, threshold and box margins are kept instead of refitted: "
        "only when its detector, verifier and box network are the ones exported",
    )
    ap.add_argument("--data", type=Path, default=default_data_root())
    args = ap.parse_args(argv)
    out: Path = args.out
    if args.score_from is not None:
        if args.calibrate_only:
            raise SystemExit("error: --score-from keeps the score and --calibrate-only refits it: give one")
        problem = score_source_problem(
            args.score_from, args.detector, args.verifier, args.keypoints, args.box_keypoints
        )
        if problem is not None:  # before any file is written
            raise SystemExit(f"error: --score-from {args.score_from}: {problem}")
    if not args.calibrate_only:
        out.parent.mkdir(parents=True, exist_ok=True)
        from hindsight_training.verifier import Probe

        files = manifest(box_keypoints={} if args.box_keypoints else None)["files"]
        summaries: dict[str, Any] = {"box_keypoints": None}
        if args.box_keypoints is not None:  # first: it may read the keypoint file about to be replaced
            target = out.parent / files["box_keypoints"]
            summaries["box_keypoints"] = copy_box_network(args.box_keypoints, target)
            print(f"kept {target} from {args.box_keypoints} ({target.stat().st_size / 1e6:.1f} MB)")
        keep_verifier = args.verifier is not None and args.verifier.suffix == ".json"
        probe = Probe.load(args.verifier) if args.verifier is not None and not keep_verifier else None
        summaries["verifier"] = probe.summary if probe is not None else None
        # The detector and the verifier give coarse scores and boxes: int8 files, run in float with their
        # activation ranges (see open_network). The keypoint heatmaps keep float activations (their
        # activation ranges lost 2 points of agreement on the real clip).
        sources = {"detector": args.detector, "keypoints": args.keypoints[0]}
        if keep_verifier:
            sources["verifier"] = args.verifier
        for role in ("detector", "keypoints", "verifier"):
            target = out.parent / files[role]
            source = sources.get(role)
            ensemble = role == "keypoints" and (
                len(args.keypoints) > 1 or shipped_member(args.keypoints[0])[1] is not None
            )
            if not ensemble and source is not None and source.suffix == ".json":
                # A shipped network is kept byte for byte: quantizing an int8 network again would change it.
                summaries[role] = copy_shipped_network(source, role, target)
                if role == "verifier" and "kind" not in summaries[role]:  # up to 0.5 the manifest did not say
                    summaries[role]["kind"] = UNTRAINED_VERIFIER
                print(f"kept {target} from {source} ({target.stat().st_size / 1e6:.1f} MB)")
                continue
            fp32 = target.with_name(target.stem + ".fp32.onnx")
            if role == "verifier":
                export_verifier_onnx(fp32, probe)
            else:
                assert source is not None
                if ensemble:
                    net, summaries[role] = keypoint_ensemble(args.keypoints)
                else:
                    net, summaries[role] = _load_checkpoint(role, source)
                (export_detector_onnx if role == "detector" else export_keypoints_onnx)(net, fp32)
                fp32.with_suffix(".json").unlink(missing_ok=True)
            if role == "keypoints":
                store = store_weights_int8 if args.keypoint_weights == "int8" else store_weights_fp16
                os.replace(store(fp32), target)
                summaries[role] = {**summaries[role], "stored_weights": args.keypoint_weights}
            else:
                quantize_int8(fp32, target, calibration_inputs(args.data, role))
                fp32.unlink()
            kind = f"{args.keypoint_weights} weights" if role == "keypoints" else "int8"
            print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, {kind})")
        _atomic_write_bytes(
            out,
            json.dumps(
                manifest(
                    summaries["detector"],
                    summaries["keypoints"],
                    verifier=summaries["verifier"],
                    box_keypoints=summaries["box_keypoints"],
                ),
                indent=1,
            ).encode(),
        )
    meta = json.loads(out.read_text())
    if args.score_from is not None:
        try:
            kept = with_score_of(meta, json.loads(args.score_from.read_text()))
        except ValueError as exc:  # checked above; a guard, the manifest stays unfitted
            raise SystemExit(f"error: --score-from {args.score_from}: {exc}") from exc
        _atomic_write_bytes(out, json.dumps(kept, indent=1).encode())
        print(f"kept the score calibration, threshold and box margins of {args.score_from}")
        return
    meta.setdefault("inference", {})["box_from_keypoints"] = fit_box_margins(load_animalpose(args.data))
    meta["inference"]["whole_frame_fallback"] = True
    meta["inference"]["whole_frame_always"] = True
    _atomic_write_bytes(out, json.dumps(meta, indent=1).encode())  # the fits below load the model from it
    holdout = score_holdout_of(meta.get("training", {}))
    meta["score_calibration"] = fit_score_calibration(out, args.data, holdout_percent=holdout)
    meta.pop("score_threshold", None)
    _atomic_write_bytes(out, json.dumps(meta, indent=1).encode())
    fit = fit_score_threshold(out, args.data, holdout_percent=holdout)
    meta["score_threshold"] = fit["threshold"]
    meta["score_threshold_fit"] = fit
    _atomic_write_bytes(out, json.dumps(meta, indent=1).encode())
    print(f"calibration: {meta['score_calibration']}")
    print(f"score threshold: {fit}")


if __name__ == "__main__":
    main()
