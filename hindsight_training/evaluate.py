"""Evaluate the ONNX dog pose model on Animal-Pose.

Usage: ``python -m hindsight_training.evaluate [--data PATH] [--split val] [--species dog] [--json]``
or ``python -m hindsight_training.evaluate --clip VIDEO --reference POSES [--json]``
or ``python -m hindsight_training.evaluate --model CANDIDATE.json --baseline SHIPPED.json [--json]``

Reports PCK@0.05 and PCK@0.1 (threshold = alpha x the longer side of the labelled box) per
keypoint and for the hind-limb group, (a) for the full pipeline (detect on the whole image, then
keypoints; predictions matched to the labelled animals by IoU, a missed animal counts as wrong)
and (b) with keypoints computed in the ground-truth box; plus the share of animals found
(IoU >= 0.5) in single-animal images.

With ``--clip``, the model follows the dog through a video as ``analyze`` does and each keypoint's
share of frames within 0.1 body length (nose to tail base) of a reference track is reported
(``--reference``: any pose file ``vision.io.load_poses`` reads, e.g. another model's predictions).

With ``--baseline``, two models are run on the same animals and the candidate's figures minus the
baseline's are reported with a 95% paired bootstrap interval over animals
(:func:`hindsight_training.metrics.paired_difference`): on 180 validation dogs a point or two of PCK is
within the noise of which dogs happen to be in the split.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hindsight_training.dataset import Record, load_animalpose
from hindsight_training.metrics import (
    HIND_LIMB_INDEX,
    confidence_reliability,
    match_by_iou,
    paired_difference,
    pck_hits,
    pooled_rate,
    standing_side_on,
    summarise_pck,
)
from hindsight_training.paths import default_data_root
from vision.analysis import CONFIDENCE_THRESHOLD
from vision.anatomy import CANONICAL_KEYPOINTS, HIND_LIMB_KEYPOINTS
from vision.model.detector import DogPoseModel
from vision.model.geometry import box_iou, read_rgb
from vision.model.manifest import default_model_path

ALPHAS = (0.05, 0.1)
MATCH_IOU = 0.3


def select_records(records: list[Record], split: str, species: str) -> list[Record]:
    """Select the records of a split that contain at least one labelled animal of ``species``."""
    return [r for r in records if r.split == split and any(i.species == species for i in r.instances)]


def collect_hits(
    model: DogPoseModel,
    records: list[Record],
    image_dir: Path,
    species: str = "dog",
    max_instances: int | None = None,
    pipeline: bool = True,
) -> dict[str, Any]:
    """Per-animal PCK hits of a model, before any pooling.

    Parameters are those of :func:`evaluate_records`.

    Returns
    -------
    dict
        ``gt_box`` and (with ``pipeline``) ``pipeline`` -> {alpha: (N, K) float64 hits, NaN where
        unlabelled}, rows in record order; ``found`` (M,) bool, one per single-animal image (with
        ``pipeline``), and ``found_side_on`` (M,) bool, whether that animal stands side-on;
        ``side_on`` (N,) bool, the animals that stand side-on (:func:`standing_side_on`);
        ``gt_box_confidence`` (N, K) float64, the confidences of the GT-box keypoints; ``n_instances`` N.
    """
    hits: dict[str, dict[float, list[np.ndarray]]] = {
        "gt_box": {a: [] for a in ALPHAS},
        "pipeline": {a: [] for a in ALPHAS},
    }
    single_found: list[bool] = []
    single_side_on: list[bool] = []
    side_on: list[bool] = []
    confidence: list[np.ndarray] = []
    n = 0
    for rec in records:
        gts = [i for i in rec.instances if i.species == species]
        if max_instances is not None and n >= max_instances:
            break
        if max_instances is not None:
            gts = gts[: max_instances - n]
        n += len(gts)
        img = read_rgb(image_dir / rec.file)
        for inst in gts:
            side_on.append(standing_side_on(inst.keypoints, inst.bbox))
            det = model.keypoints_in_box(img, inst.bbox)
            confidence.append(det.keypoints[:, 2])
            for a in ALPHAS:
                hits["gt_box"][a].append(pck_hits(det.keypoints, inst.keypoints, inst.bbox, a))
        if not pipeline:
            continue
        dets = model.detect(img, max_dogs=5)
        boxes = np.array([d.bbox_xyxy for d in dets], np.float32).reshape(-1, 4)
        gt_boxes = np.array([i.bbox for i in gts], np.float32).reshape(-1, 4)
        match = match_by_iou(boxes, gt_boxes)
        iou = box_iou(boxes, gt_boxes)
        for g, inst in enumerate(gts):
            p = match[g]
            ok = p >= 0 and iou[p, g] >= MATCH_IOU
            for a in ALPHAS:
                if ok:
                    h = pck_hits(dets[p].keypoints, inst.keypoints, inst.bbox, a)
                else:
                    h = np.where(inst.keypoints[:, 2] > 0, 0.0, np.nan)
                hits["pipeline"][a].append(h)
        n_all = sum(i.species == species for i in rec.instances)
        if n_all == 1 and len(gts) == 1:
            single_found.append(bool(iou.shape[0] > 0 and iou[:, 0].max() >= 0.5))
            single_side_on.append(side_on[-1])
    n_kp = len(CANONICAL_KEYPOINTS)
    out: dict[str, Any] = {"n_instances": n, "side_on": np.array(side_on, bool)}
    out["gt_box_confidence"] = np.array(confidence, np.float64).reshape(-1, n_kp)
    for mode in ("gt_box", "pipeline") if pipeline else ("gt_box",):
        out[mode] = {a: np.array(hits[mode][a], np.float64).reshape(-1, n_kp) for a in ALPHAS}
    if pipeline:
        out["found"] = np.array(single_found, bool)
        out["found_side_on"] = np.array(single_side_on, bool)
    return out


def side_on_figures(hits: dict[str, Any]) -> dict[str, Any]:
    """PCK@0.1 of the animals standing side-on (the filming setting), from :func:`collect_hits`.

    Returns
    -------
    dict
        ``n_instances``; per mode (``gt_box``, ``pipeline``) ``hind_limb`` and ``all``, each
        :func:`pooled_rate` (a 95% bootstrap interval over the animals), None when no animal
        qualifies; with the pipeline, ``found`` of ``single_animal_images`` side-on.
    """
    chosen = hits["side_on"]
    out: dict[str, Any] = {"n_instances": int(chosen.sum())}
    for mode in ("gt_box", "pipeline"):
        if mode not in hits:
            continue
        h = hits[mode][0.1][chosen]
        out[mode] = (
            {"hind_limb": pooled_rate(h[:, list(HIND_LIMB_INDEX)]), "all": pooled_rate(h)} if chosen.any() else None
        )
    if "found" in hits:
        found = hits["found"][hits["found_side_on"]]
        out["single_animal_images"] = int(len(found))
        out["found"] = int(found.sum())
    return out


def evaluate_records(
    model: DogPoseModel,
    records: list[Record],
    image_dir: Path,
    species: str = "dog",
    max_instances: int | None = None,
    pipeline: bool = True,
) -> dict[str, Any]:
    """Compute the PCK and detection figures.

    Parameters
    ----------
    model : DogPoseModel
        Loaded ONNX model.
    records : list of Record
        Images to evaluate (see :func:`select_records`).
    image_dir : Path
        Folder of the image files.
    species : str
        Animals evaluated.
    max_instances : int or None
        Stop after this many labelled animals (in record order).
    pipeline : bool
        Also run the full detect-then-keypoints pipeline.

    Returns
    -------
    dict
        ``gt_box`` and ``pipeline`` -> {"pck05": summary, "pck10": summary}; ``detection`` ->
        found share in single-animal images; ``standing_side_on`` (:func:`side_on_figures`);
        ``confidence``: for the hind-limb group and all keypoints, :func:`confidence_reliability` of the
        GT-box keypoints at PCK@0.1, with the analysis's confidence threshold; ``n_instances``; ``seconds``.
    """
    t0 = time.time()
    hits = collect_hits(model, records, image_dir, species, max_instances, pipeline)
    out: dict[str, Any] = {"n_instances": hits["n_instances"]}
    for mode in ("gt_box", "pipeline") if pipeline else ("gt_box",):
        out[mode] = {f"pck{int(a * 100):02d}": summarise_pck(hits[mode][a]) for a in ALPHAS}
    if pipeline:
        found = hits["found"]
        out["detection"] = {
            "single_animal_images": len(found),
            "found_iou50": float(np.mean(found)) if len(found) else None,
        }
    out["standing_side_on"] = side_on_figures(hits)
    conf, right = hits["gt_box_confidence"], hits["gt_box"][0.1]
    out["confidence"] = {  # what a keypoint's confidence says, and what the analysis keeps (GT boxes, PCK@0.1)
        "hind_limb": confidence_reliability(
            conf[:, list(HIND_LIMB_INDEX)], right[:, list(HIND_LIMB_INDEX)], CONFIDENCE_THRESHOLD
        ),
        "all": confidence_reliability(conf, right, CONFIDENCE_THRESHOLD),
    }
    out["seconds"] = round(time.time() - t0, 1)
    return out


def compare_hits(baseline: dict[str, Any], candidate: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Candidate minus baseline on the same animals (:func:`collect_hits` of each), with 95% intervals.

    Returns
    -------
    dict
        ``{mode: {"pck05"|"pck10": {"hind_limb"|"all": paired_difference}}}`` for the modes both
        have, and ``found`` (the share of single-animal images with the animal found) when both
        ran the pipeline. See :func:`hindsight_training.metrics.paired_difference`.
    """
    out: dict[str, Any] = {}
    for mode in ("gt_box", "pipeline"):
        if mode not in baseline or mode not in candidate:
            continue
        out[mode] = {}
        for a in ALPHAS:
            base, cand = baseline[mode][a], candidate[mode][a]
            out[mode][f"pck{int(a * 100):02d}"] = {
                "hind_limb": paired_difference(
                    base[:, list(HIND_LIMB_INDEX)], cand[:, list(HIND_LIMB_INDEX)], seed=seed
                ),
                "all": paired_difference(base, cand, seed=seed),
            }
    if "found" in baseline and "found" in candidate and len(baseline["found"]):
        f_base, f_cand = (np.asarray(x, np.float64)[:, None] for x in (baseline["found"], candidate["found"]))
        out["found"] = paired_difference(f_base, f_cand, seed=seed)
    return out


def format_comparison(result: dict[str, Any], baseline: str, candidate: str) -> str:
    """Plain-text table of :func:`compare_hits`."""
    head = f"{'figure':<26}{'baseline':>10}{'candidate':>11}{'difference':>12}  95% interval"
    lines = [f"{candidate} against {baseline} (same animals; interval: paired bootstrap over animals)", head]
    lines.append("-" * len(head))

    def row(label: str, d: dict[str, Any]) -> None:
        lines.append(
            f"{label:<26}{d['a']:>10.3f}{d['b']:>11.3f}{d['difference']:>+12.3f}  [{d['low']:+.3f}, {d['high']:+.3f}]"
        )

    for mode in ("gt_box", "pipeline"):
        for key in ("pck10", "pck05"):
            for group in ("hind_limb", "all"):
                if mode in result:
                    row(f"{mode} {group} {'@.1' if key == 'pck10' else '@.05'}", result[mode][key][group])
    if "found" in result:
        row("found (single-animal)", result["found"])
    return "\n".join(lines)


def false_positive_rate(model: DogPoseModel, records: list[Record], image_dir: Path, species: str) -> dict:
    """Share of images with no labelled ``species`` where a detection passes the model's score threshold."""
    neg = [r for r in records if not any(i.species == species for i in r.instances)]
    fp = [len(model.detect(read_rgb(image_dir / r.file))) > 0 for r in neg]
    return {"images": len(neg), "with_detection": float(np.mean(fp)) if fp else None}


def swaps_at_times(swapped: dict[str, np.ndarray], grid: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
    """Carry swaps found on a uniform time grid back to a clip's own frame times.

    ``analyze`` repairs swaps after resampling a variable-frame-rate clip onto a uniform grid
    (:func:`vision.clean.resample_uniform`); each frame takes the state of the grid point nearest
    to it. On a constant-rate clip the grid is the frames' own times and nothing moves.

    Parameters
    ----------
    swapped : dict of str to np.ndarray
        Group name -> (grid,) bool (``SwapReport.swapped``).
    grid, times : np.ndarray
        (grid,) and (time,) float seconds, both increasing.

    Returns
    -------
    dict of str to np.ndarray
        Group name -> (time,) bool.
    """
    grid, times = np.asarray(grid, np.float64), np.asarray(times, np.float64)
    if len(grid) < 2:
        return {name: np.resize(np.asarray(flags, bool), len(times)) for name, flags in swapped.items()}
    right = np.clip(np.searchsorted(grid, times), 1, len(grid) - 1)
    left = right - 1
    nearest = np.where(np.abs(times - grid[left]) <= np.abs(grid[right] - times), left, right)
    return {name: np.asarray(flags, bool)[nearest] for name, flags in swapped.items()}


def clip_agreement(
    video: Path, reference: Path, model_path: Path | None = None, tolerance: float = 0.1
) -> dict[str, Any]:
    """Follow the dog through ``video`` with the model and compare with a reference pose file.

    Returns
    -------
    dict
        ``{"video", "reference", "frames", "tolerance", "keypoints": reference_agreement(...)}`` over the
        keypoints both have; each keypoint also gets ``after_swap_repair``, its share once the
        left/right swaps that ``analyze`` finds before any gait score are undone (found as ``analyze``
        finds them: on a uniform time grid, in the track without its low-confidence points, then carried
        back to the clip's own frames by :func:`swaps_at_times`; ``swaps_repaired``: grid frames per group).
    """
    from hindsight_training.metrics import reference_agreement
    from vision.clean import drop_low_confidence, exchange_labels, repair_swaps, resample_uniform
    from vision.io import load_poses
    from vision.pose.backend import default_backend
    from vision.pose.video_tracking import track_video
    from vision.video import probe

    info = probe(video)
    ref = load_poses(reference, fps=info.fps)
    ours = track_video(video, default_backend(str(model_path) if model_path else None)).tracks
    if ours.sizes["time"] != ref.sizes["time"]:
        raise ValueError(f"{video.name} has {ours.sizes['time']} frames, {reference.name} {ref.sizes['time']}")
    ours_names = {str(n) for n in ours["keypoint"].values}
    names = tuple(str(n) for n in ref["keypoint"].values if str(n) in ours_names)

    def stack(ds: Any, var: str) -> np.ndarray:
        return ds[var].sel(keypoint=list(names)).isel(individual=0).values

    ref_xy, ref_conf = stack(ref, "position").transpose(0, 2, 1), stack(ref, "confidence")
    agreement = reference_agreement(stack(ours, "position").transpose(0, 2, 1), ref_xy, ref_conf, names, tolerance)
    uniform = resample_uniform(ours)
    swaps = repair_swaps(drop_low_confidence(uniform, CONFIDENCE_THRESHOLD))[1]
    swapped = swaps_at_times(swaps.swapped, uniform["time"].values, ours["time"].values)
    repaired = reference_agreement(
        stack(exchange_labels(ours, swapped), "position").transpose(0, 2, 1), ref_xy, ref_conf, names, tolerance
    )
    for name, row in agreement.items():
        row["after_swap_repair"] = repaired[name]["share"]
    return {
        "video": video.name,
        "reference": reference.name,
        "frames": int(ref.sizes["time"]),
        "tolerance": tolerance,
        "swaps_repaired": dict(swaps.frames_swapped),
        "keypoints": agreement,
    }


def format_clip_table(result: dict[str, Any]) -> str:
    """Plain-text table of :func:`clip_agreement`."""
    head = f"{'keypoint':<18}{'frames':>8}{'within':>10}{'swap ok':>10}{'repaired':>10}"
    lines = [f"{result['video']} vs {result['reference']}: within {result['tolerance']} body length", head]
    lines.append("-" * len(head))
    for name, row in result["keypoints"].items():
        values = (row["share"], row["swap_allowed"], row["after_swap_repair"])
        cells = "".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in values)
        lines.append(f"{name:<18}{row['frames']:>8}{cells}")
    repaired = result.get("swaps_repaired") or {}
    if repaired:
        lines.append("frames the swap repair exchanged: " + ", ".join(f"{k} {v}" for k, v in repaired.items()))
    return "\n".join(lines)


def format_table(result: dict[str, Any]) -> str:
    """Plain-text table of per-keypoint PCK for both modes."""
    modes = [m for m in ("gt_box", "pipeline") if m in result]
    head = f"{'keypoint':<18}" + "".join(f"{m + ' @.05':>16}{m + ' @.1':>16}" for m in modes)
    lines = [head, "-" * len(head)]

    def fmt(v: float | None) -> str:
        return f"{v:16.3f}" if v is not None else f"{'-':>16}"

    for name in [*CANONICAL_KEYPOINTS, "HIND_LIMB", "ALL"]:
        row = f"{name:<18}"
        for m in modes:
            for key in ("pck05", "pck10"):
                s = result[m][key]
                group = {"HIND_LIMB": s["hind_limb"], "ALL": s["all"]}
                v = group[name] if name in group else s["per_keypoint"][name]
                row += fmt(v)
        lines.append(row)
    if "detection" in result:
        d = result["detection"]
        lines.append(f"found (IoU>=0.5) in single-animal images: {d['found_iou50']} of {d['single_animal_images']}")
    lines.append(f"hind-limb group: {', '.join(HIND_LIMB_KEYPOINTS)}; n = {result['n_instances']}")
    side = result.get("standing_side_on")
    if side and side["n_instances"]:
        parts = []
        for mode, label in (("gt_box", "GT box"), ("pipeline", "end to end")):
            if side.get(mode):
                r = side[mode]["hind_limb"]
                parts.append(f"{label} {r['rate']:.3f} [{r['low']:.3f}, {r['high']:.3f}]")
        found = f"; found in {side['found']} of {side['single_animal_images']} images" if "found" in side else ""
        lines.append(
            f"standing side-on (the filming setting), {side['n_instances']} animals: hind-limb PCK@0.1 "
            + ", ".join(parts)
            + found
        )
    reliability = (result.get("confidence") or {}).get("hind_limb")
    if reliability and reliability["kept_rate"] is not None:
        bins = ", ".join(
            f"{b['low']:.1f}-{b['high']:.1f}: {b['rate']:.2f}" for b in reliability["bins"] if b["rate"] is not None
        )
        dropped = reliability["dropped_rate"]
        lines.append(
            f"hind-limb points right (GT box, PCK@0.1) by confidence: {bins}; the analysis keeps those >= "
            f"{reliability['threshold']:g} ({reliability['kept_share']:.0%}; right {reliability['kept_rate']:.2f}, "
            f"dropped ones {'-' if dropped is None else f'{dropped:.2f}'})"
        )
    return "\n".join(lines)


def write_sidecar_metrics(model_path: Path | None, result: dict[str, Any], first30: float, split: str) -> None:
    """Store evaluation figures (and the regression-test reference) in the model manifest."""
    from vision.model.manifest import default_model_path

    sidecar = model_path or default_model_path()
    meta = json.loads(sidecar.read_text())
    meta.setdefault("metrics", {})[f"{split}_evaluation"] = result
    meta["metrics"]["regression"] = {"first30_val_dogs_gt_box_hind_pck10": first30}
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(sidecar)


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument("--split", default="val")
    ap.add_argument("--species", default="dog")
    ap.add_argument("--model", type=Path, default=None, help="model manifest (default: the shipped model)")
    ap.add_argument("--flip-test", action="store_true", help="average each crop with its mirror image")
    ap.add_argument("--max-instances", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--write-sidecar", action="store_true", help="store figures in the model sidecar")
    ap.add_argument("--clip", type=Path, default=None, help="a video: compare the model's tracks with --reference")
    ap.add_argument("--reference", type=Path, default=None, help="reference pose file for --clip")
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another model manifest: report --model minus it on the same animals, with 95%% bootstrap intervals",
    )
    args = ap.parse_args(argv)
    if args.clip is not None:
        if args.reference is None:
            ap.error("--clip needs --reference")
        from vision.errors import HindsightInputError

        try:
            clip = clip_agreement(args.clip, args.reference, args.model)
        except (HindsightInputError, ValueError) as exc:
            ap.exit(2, f"error: {exc}\n")
        print(json.dumps(clip, indent=1) if args.json else format_clip_table(clip))
        return
    try:
        model = DogPoseModel.load(args.model)
        baseline = DogPoseModel.load(args.baseline) if args.baseline is not None else None
    except (FileNotFoundError, ValueError) as exc:
        ap.exit(2, f"error: {exc}\n")
    if not (args.data / "annotations.json").is_file():
        ap.exit(2, f"error: no Animal-Pose data in {args.data} (annotations.json missing); pass --data\n")
    records = load_animalpose(args.data)
    model.reader.flip_test = model.reader.flip_test or args.flip_test
    sel = select_records(records, args.split, args.species)
    if baseline is not None:
        image_dir = args.data / "images"
        base_hits = collect_hits(baseline, sel, image_dir, args.species, args.max_instances)
        try:
            comparison = compare_hits(base_hits, collect_hits(model, sel, image_dir, args.species, args.max_instances))
        except ValueError as exc:  # e.g. no labelled animal selected
            ap.exit(2, f"error: {exc}\n")
        names = (str(args.baseline), str(args.model or default_model_path()))
        print(json.dumps(comparison, indent=1) if args.json else format_comparison(comparison, *names))
        return
    result = evaluate_records(model, sel, args.data / "images", args.species, args.max_instances)
    split_records = [r for r in records if r.split == args.split]
    result["false_positives"] = false_positive_rate(model, split_records, args.data / "images", args.species)
    # The validation split has (almost) no images without the species: also report a fixed sample of
    # the training split's (cats, horses) -- negatives seen in training, so an optimistic figure.
    train_neg = [r for r in records if r.split == "train" and not any(i.species == args.species for i in r.instances)]
    result["false_positives_train_sample"] = false_positive_rate(
        model, train_neg[:: max(1, len(train_neg) // 300)], args.data / "images", args.species
    )
    if args.write_sidecar:
        reg = evaluate_records(model, sel, args.data / "images", args.species, 30, pipeline=False)
        write_sidecar_metrics(args.model, result, reg["gt_box"]["pck10"]["hind_limb"], args.split)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(format_table(result))
        for key, label in (("false_positives", args.split), ("false_positives_train_sample", "train sample")):
            fp = result[key]
            print(
                f"{label}: images without a {args.species}, share with a detection >= {model.score_threshold:.2f}: "
                f"{fp['with_detection']} of {fp['images']}"
            )


if __name__ == "__main__":
    main()
