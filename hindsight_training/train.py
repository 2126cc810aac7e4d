"""Train the Hindsight dog detector and keypoint networks on Animal-Pose (CPU).

Usage: ``python -m hindsight_training.train [--task {both,ensemble,keypoints,detector}]
[--minutes N | --steps N] [--resume]
[--init PATH]
[--crop-sizes 160,192] [--p-dog 0.35,0.85] [--det-zoom 0.45,1.3] [--lr 1e-3] [--backbone efficientnet-lite0]
[--skips] [--hind-weight 1] [--score-holdout 15]``

``--init vision/model/weights/dog_pose.json`` continues training the shipped networks (rebuilt from their ONNX
files by ``hindsight_training.recover``), so no checkpoint is needed. A shipped keypoint
ensemble is continued one member at a time: ``--member 1`` picks the second.

Two networks, trained side by side with one thread each by ``--task both``
(each run gets the options that concern it, :func:`hindsight_training.recipe.both_commands`), which then
exports them (``--model-out``, default the shipped manifest) and evaluates. ``--task ensemble`` runs the
shipped model's whole recipe (a detector and three keypoint members, the shipped runs' steps;
:mod:`hindsight_training.recipe`). The two
kinds of network:

- ``keypoints``: the top-down ``KeypointNet`` (EfficientNet-Lite0 + three transposed convolutions
  to stride 4) on augmented box crops of dogs, cats and horses (the dog share rises from 35% to
  85%), MSE on sigma 2.5-cell Gaussian heatmaps of the labelled keypoints (``--hind-weight``
  weighs the hind-limb group's heatmaps); crops 160 px for the first 55% of the budget, 192 px after.
- ``detector``: the CenterNet head of ``DogPoseNet`` (Lite0 + FPN-lite) on whole letterboxed
  images (focal loss + L1 offset/log-size; only dogs are positives, cats/horses/people are
  background, 4% synthetic empty frames). ``--score-holdout`` (default 15) keeps that percent of
  the training images from it (a stable hash of the file name), and ``export`` fits the dog score
  and its threshold on them: images the detector never saw.

Both: the head trains alone for 150 steps, then the backbone joins with its own warm-up; the LR
follows a cosine decay over the budget: ``--minutes`` of training time (a slower or busier
computer trains fewer steps) or ``--steps`` (as much training anywhere, only later on a slow
computer). Either survives resumes. The stem and first 3 blocks stay frozen,
BatchNorm statistics of the backbone too.
Batches depend only on (seed, step). Checkpoints every 5 min in ``<checkpoint_root>/<task>/``
(:func:`checkpoint_root`: ``$HINDSIGHT_CHECKPOINTS`` or the user data folder, outside the work tree); every
15 min a validation (keypoints: GT-box hind-limb PCK@0.1; detector: dogs found at IoU >= 0.5)
and an ONNX export of the best checkpoint next to it.
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hindsight_training import dataset as ds
from hindsight_training.metrics import HIND_LIMB_INDEX, pck_hits, summarise_pck
from hindsight_training.paths import checkpoint_root, default_data_root, shipped_manifest
from hindsight_training.recipe import ENSEMBLE_MINUTES
from vision.anatomy import CANONICAL_KEYPOINTS
from vision.model.decode import decode_heatmaps
from vision.model.geometry import crop_matrix, from_cells, letterbox, read_rgb, warp_square

#: ``--minutes`` when neither it nor ``--steps`` is given (``--task ensemble``: ``recipe.ENSEMBLE_STEPS``).
DEFAULT_MINUTES = 85.0


class Data:
    """In-memory Animal-Pose training data and seeded batch builders."""

    def __init__(self, root: Path, score_holdout: int = 0, pipeline_boxes: dict[str, np.ndarray] | None = None) -> None:
        records = ds.load_animalpose(root)
        self.root = root
        self.train = [r for r in records if r.split == "train"]
        #: Whole images for the detector: the training split without the score-fit hold-out.
        self.det_train = [r for r in self.train if not ds.in_score_holdout(r.file, score_holdout)]
        self.val = [r for r in records if r.split == "val"]
        cv2.setNumThreads(1)
        self.images: dict[str, np.ndarray] = {}
        for r in self.train + self.val:
            self.images[r.file] = read_rgb(root / "images" / r.file)
        boxes = pipeline_boxes or {}

        def pipeline_box(file: str, k: int) -> np.ndarray | None:
            found = boxes.get(file)
            return None if found is None or k >= len(found) else found[k, :4]

        kp_train = [(r.file, k, inst) for r in self.train for k, inst in enumerate(r.instances)]
        kp_train = [(f, k, inst) for f, k, inst in kp_train if inst.keypoints[:, 2].sum() >= 3]
        self.kp_items = [(f, inst) for f, _, inst in kp_train]
        #: The box the pipeline reads each ``kp_items`` animal in (``hindsight_training.pipeline_boxes``), or None.
        self.kp_pipeline_boxes = [pipeline_box(f, k) for f, k, _ in kp_train]
        self.is_dog = np.array([inst.species == "dog" for _, inst in self.kp_items])
        self.val_dogs = [(r.file, inst) for r in self.val for inst in r.instances if inst.species == "dog"]
        self.val_pipeline_boxes = [
            pipeline_box(r.file, k) for r in self.val for k, inst in enumerate(r.instances) if inst.species == "dog"
        ]

    def kp_batch(self, seed: int, n: int, size: int, p_dog: float, p_pipeline: float = 0.0) -> tuple[np.ndarray, ...]:
        """Augmented crops (n, size, size, 3) uint8, heatmaps (n, 20, s, s), weights (n, 20).

        A share ``p_pipeline`` of the crops is cut around the animal's pipeline box (when it has one)
        with :data:`~hindsight_training.dataset.PIPELINE_BOX_JITTER`, the rest around its jittered label box.
        """
        rng = np.random.default_rng(seed)
        dogs, others = np.flatnonzero(self.is_dog), np.flatnonzero(~self.is_dog)
        crops, hms, ws = [], [], []
        for _ in range(n):
            idx = int(rng.choice(dogs) if rng.random() < p_dog else rng.choice(others))
            file, inst = self.kp_items[idx]
            # no random draw without pipeline boxes: without them the batches of (seed, step) are unchanged
            box = self.kp_pipeline_boxes[idx] if p_pipeline > 0 and rng.random() < p_pipeline else None
            jitter = ds.LABEL_BOX_JITTER if box is None else ds.PIPELINE_BOX_JITTER
            c, h, w = ds.keypoint_sample(self.images[file], inst, size, rng, box=box, jitter=jitter)
            crops.append(c)
            hms.append(h)
            ws.append(w)
        return np.stack(crops), np.stack(hms), np.stack(ws)

    def det_batch(
        self, seed: int, n: int, size: int, zoom: tuple[float, float] = (0.45, 1.3)
    ) -> tuple[np.ndarray, ...]:
        """Augmented whole images with CenterNet targets (see ``dataset.detection_sample``)."""
        rng = np.random.default_rng(seed)
        out: list[list[np.ndarray]] = [[], [], [], []]
        for _ in range(n):
            r = self.det_train[int(rng.integers(len(self.det_train)))]
            if rng.random() < 0.04:  # synthetic empty frames: flat colour or noise
                img = np.full((r.height, r.width, 3), rng.integers(0, 256, 3), np.uint8)
                if rng.random() < 0.5:
                    img = rng.integers(0, 256, img.shape, dtype=np.uint8)
                boxes = np.zeros((0, 4), np.float32)
            else:
                img = self.images[r.file]
                dog_boxes = [i.bbox for i in r.instances if i.species == "dog"]
                boxes = np.array(dog_boxes, np.float32).reshape(-1, 4)
            for lst, arr in zip(out, ds.detection_sample(img, boxes, size, rng, zoom), strict=True):
                lst.append(arr)
        return tuple(np.stack(lst) for lst in out)


def pretrained_source(backbone: str | None) -> str:
    """What a network trained from scratch starts from: MoveNet's human-pose weights or ImageNet's."""
    from hindsight_training.network import MOVENET_BACKBONE

    return "MoveNet Lightning (human pose)" if backbone == MOVENET_BACKBONE else "ImageNet"


def progress_schedule(progress: float, step: int, warm_head: int = 150, warm_bb: int = 200) -> tuple[float, float]:
    """LR multipliers (head, backbone) for a time progress in [0, 1] and a step count."""
    cos = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    head = cos * min(1.0, (step + 1) / warm_head)
    bb = 0.0 if step < warm_head else cos * min(1.0, (step - warm_head + 1) / warm_bb)
    return head, bb


def ema_decay(decay: float, step: int) -> float:
    """Effective decay of the weight average at an optimiser step: ``decay``, lower in the first steps.

    The ramp ``(1 + step) / (10 + step)`` keeps the average from clinging to the random or
    ImageNet start (as in the EMA of TensorFlow's and timm's training scripts).
    """
    return min(decay, (1.0 + step) / (10.0 + step))


def ema_update(average: Any, net: Any, decay: float) -> None:
    """Move ``average`` (a copy of ``net``) towards ``net``: ``a <- decay * a + (1 - decay) * w``.

    Floating-point parameters and buffers are averaged; integer buffers (BatchNorm's batch count)
    are copied. In place, without gradients.
    """
    import torch

    with torch.no_grad():
        mine = average.state_dict()
        for name, value in net.state_dict().items():
            if value.dtype.is_floating_point:
                mine[name].mul_(decay).add_(value, alpha=1.0 - decay)
            else:
                mine[name].copy_(value)


def keypoint_loss_weights(hind_weight: float = 1.0) -> np.ndarray:
    """(20,) float32 loss weight of each keypoint heatmap: ``hind_weight`` for the hind-limb group, 1 elsewhere."""
    w = np.ones(len(CANONICAL_KEYPOINTS), np.float32)
    w[list(HIND_LIMB_INDEX)] = hind_weight
    return w


def keypoint_loss(
    pred: Any, target: Any, weights: Any, channel_weight: Any, soft: Any = None, teacher_weight: float = 0.5
) -> Any:
    """Heatmap loss of the keypoint network: weighted MSE, scaled by 1000 (Adam's epsilon should not dominate).

    Parameters
    ----------
    pred, target : torch.Tensor
        (B, 20, h, w) predicted and label heatmaps.
    weights : torch.Tensor
        (B, 20) label weights (0 for unlabelled keypoints), already times ``channel_weight``.
    channel_weight : torch.Tensor
        (20,) weight of each keypoint (:func:`keypoint_loss_weights`).
    soft : torch.Tensor or None
        (B, 20, h, w) a teacher's heatmaps: then ``teacher_weight`` of the loss is the MSE to them on
        every keypoint (labelled or not), the rest the MSE to the labels.
    teacher_weight : float
        Share of the loss on ``soft``.
    """
    cells = target[0, 0].numel()
    label_loss = (
        1000.0 * (weights[:, :, None, None] * (pred - target) ** 2).sum() / (weights.sum().clamp(min=1.0) * cells)
    )
    if soft is None:
        return label_loss
    tw = channel_weight.expand_as(weights)
    soft_loss = 1000.0 * (tw[:, :, None, None] * (pred - soft) ** 2).sum() / (tw.sum() * cells)
    return (1.0 - teacher_weight) * label_loss + teacher_weight * soft_loss


def focal_loss(logits: Any, gt: Any) -> Any:
    """CenterNet focal loss on (B, 1, h, w) logits and Gaussian targets, per positive."""
    import torch

    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = gt.eq(1).float()
    pos_loss = torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = torch.log(1 - p) * p**2 * (1 - gt) ** 4 * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1.0)


def val_gt_box(
    net: Any, data: Data, size: int = 192, limit: int | None = None, pipeline: bool = False
) -> dict[str, Any]:
    """PCK of the torch net on validation dogs (argmax + sub-pixel decode), read in their label boxes.

    With ``pipeline``, read in their pipeline boxes instead (``Data(pipeline_boxes=...)``; a dog
    without one keeps its label box). PCK is relative to the label box either way.
    """
    import torch

    items = data.val_dogs[:limit] if limit else data.val_dogs
    crop_boxes = [
        p if pipeline and p is not None else inst.bbox
        for (_, inst), p in zip(items, data.val_pipeline_boxes, strict=False)
    ]
    hits05, hits10 = [], []
    net.eval()
    with torch.no_grad():
        for i in range(0, len(items), 30):
            chunk = items[i : i + 30]
            mats = [crop_matrix(b, size) for b in crop_boxes[i : i + 30]]
            crops = np.stack([warp_square(data.images[f], m, size) for (f, _), m in zip(chunk, mats, strict=True)])
            x = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
            x = x.contiguous(memory_format=torch.channels_last)
            out = net(x)
            kp = (out[1] if isinstance(out, tuple) else out).float().numpy()
            for j, ((_, inst), m) in enumerate(zip(chunk, mats, strict=True)):
                pts = decode_heatmaps(kp[j])
                xy = from_cells(pts[:, :2])
                inv = cv2.invertAffineTransform(m)
                xy = xy @ inv[:, :2].T + inv[:, 2]
                hits05.append(pck_hits(xy, inst.keypoints, inst.bbox, 0.05))
                hits10.append(pck_hits(xy, inst.keypoints, inst.bbox, 0.1))
    net.train()
    _freeze_bn(net)
    s05, s10 = summarise_pck(np.array(hits05)), summarise_pck(np.array(hits10))
    return {"pck05": s05, "pck10": s10, "hind_pck10": s10["hind_limb"], "all_pck10": s10["all"]}


def val_detection(net: Any, data: Data, size: int = 256) -> dict[str, Any]:
    """Share of single-dog validation images whose dog is found (a box with IoU >= 0.5 among the top 5 raw peaks)."""
    import torch

    from vision.model.decode import decode_detections
    from vision.model.geometry import box_iou

    found: list[bool] = []
    net.eval()
    with torch.no_grad():
        for r in data.val:
            dogs = [i for i in r.instances if i.species == "dog"]
            if len(dogs) != 1:
                continue
            canvas, (sx, sy) = letterbox(data.images[r.file], size)
            x = torch.from_numpy(canvas[None]).permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
            det, _ = net(x)
            det = det[0].float().numpy().copy()
            det[0] = 1.0 / (1.0 + np.exp(-det[0]))
            boxes = decode_detections(det, 5, 0.05)[:, :4] * np.array([sx, sy, sx, sy], np.float32)
            iou = box_iou(boxes, dogs[0].bbox[None])
            found.append(bool(iou.size and iou.max() >= 0.5))
    net.train()
    _freeze_bn(net)
    return {"found": float(np.mean(found)), "n_images": len(found)}


def _freeze_bn(net: Any) -> None:
    """Keep the pretrained backbone's BatchNorm statistics fixed (small, mixed batches)."""
    import torch

    for m in list(net.stem.modules()) + list(net.blocks.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()


def shipped_start(manifest: Path, task: str, member: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The shipped network to continue training, rebuilt from its ONNX file, and its training summary.

    Parameters
    ----------
    manifest : Path
        Model manifest (e.g. the shipped ``vision/model/weights/dog_pose.json``).
    task : {"keypoints", "detector"}
        Which network.
    member : int or None
        For a keypoint ensemble: the member to continue (0 = the box network). The
        ensemble is rebuilt whole, then that member is kept.

    Raises
    ------
    SystemExit
        One line when ``member`` is missing for an ensemble, or out of range.
    """
    from hindsight_training.recover import recover_network, shipped_training

    previous = shipped_training(manifest, task)
    members = previous.get("members") or []
    if members and member is None:
        raise SystemExit(
            f"error: {manifest} ships an ensemble of {len(members)} keypoint networks; "
            f"pick the one to continue with --member 0..{len(members) - 1}"
        )
    if member is not None and not 0 <= member < len(members):
        raise SystemExit(f"error: --member {member}: {manifest} ships {len(members)} ensemble members")
    net = recover_network(manifest, task)
    if member is None:
        return net, previous
    return net.members[member], {"version": previous.get("version"), "member": member, **members[member]}


def train_recipe(args: argparse.Namespace) -> None:
    """Run ``--task both`` or ``--task ensemble`` (:mod:`hindsight_training.recipe`), checkpoints under ``--out``."""
    from hindsight_training.recipe import both_steps, ensemble_steps, run_recipe

    folder = args.out or checkpoint_root() / args.task
    if args.task == "both":
        run_recipe(both_steps(args, args.model_out), folder, args.resume)
        return
    if not (args.resume and (folder / "member2_movenet.done").is_file()):
        from hindsight_training.movenet import default_weights_path

        try:  # before hours of training, not after
            default_weights_path()
        except FileNotFoundError as exc:
            raise SystemExit(f"error: the ensemble's third member starts from MoveNet: {exc}") from None
    run_recipe(ensemble_steps(args, folder, args.model_out, build_parser().parse_args([])), folder, args.resume)


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main`."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--task",
        choices=("both", "ensemble", "keypoints", "detector"),
        default="both",
        help="both = the detector and a keypoint network side by side (one thread each), then export and "
        "evaluate; ensemble = the shipped model's recipe: detector, three keypoint members, export, evaluate "
        "(see hindsight_training.recipe)",
    )
    ap.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from a model manifest (vision/model/weights/dog_pose.json: continue the shipped networks) "
        "or a checkpoint .pt (backbone only for keypoints)",
    )
    ap.add_argument(
        "--member",
        type=int,
        default=None,
        help="keypoints: with --init MANIFEST of a keypoint ensemble, the member to continue (0 = the box network)",
    )
    ap.add_argument("--data", type=Path, default=default_data_root())
    ap.add_argument(
        "--minutes",
        type=float,
        default=None,
        help=f"training time budget (default {DEFAULT_MINUTES:g}; ensemble: a total, shared as the shipped runs' "
        f"{', '.join(f'{m:g}' for m in ENSEMBLE_MINUTES)} minutes were)",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="step budget instead of --minutes: the learning-rate schedule and the crop-size switch run over "
        "this many optimiser steps and training stops there, so a slow or busy machine trains as far, "
        "later (ensemble: the shipped runs' steps are its default budget)",
    )
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint (recipes: the last step)")
    ap.add_argument("--out", type=Path, default=None, help="checkpoint folder (default <checkpoint_root>/<task>)")
    ap.add_argument(
        "--model-out",
        type=Path,
        default=shipped_manifest(),
        help="both, ensemble: the manifest the trained model is exported to",
    )
    ap.add_argument("--onnx", type=Path, default=None, help="ONNX written at each best validation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kp-batch", type=int, default=24)
    ap.add_argument("--det-batch", type=int, default=16)
    ap.add_argument("--det-size", type=int, default=256)
    ap.add_argument(
        "--det-zoom", default="0.45,1.3", help="detector scale range relative to the letterbox (above 1: close-ups)"
    )
    ap.add_argument(
        "--score-holdout",
        type=int,
        default=ds.SCORE_HOLDOUT_PERCENT,
        help="percent of training images the detector never sees; export fits the dog score on them",
    )
    ap.add_argument("--det-every", type=int, default=1, help="train the detection head every N steps")
    ap.add_argument(
        "--crop-sizes",
        default="160,192",
        help="keypoint crop sizes: the first for the first 55%% of the time, the last after (one size: all along)",
    )
    ap.add_argument(
        "--p-dog", default="0.35,0.85", help="share of dog crops, rising linearly from the first to the last"
    )
    ap.add_argument(
        "--backbone",
        default="efficientnet-lite0",
        help="keypoint network backbone: efficientnet-lite0, 1 or 2, or movenet-lightning "
        "(see hindsight_training.movenet); "
        "with --init MANIFEST the shipped network's own",
    )
    ap.add_argument(
        "--skips", action="store_true", help="keypoint network: skip connections from the backbone into the head"
    )
    ap.add_argument(
        "--hind-weight",
        type=float,
        default=1.0,
        help="loss weight of the hind-limb heatmaps (stifles, hocks, hind paws, tail base) relative to the others",
    )
    ap.add_argument("--frozen-blocks", type=int, default=3, help="backbone blocks kept at ImageNet weights")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--init-head",
        action="store_true",
        help="keypoints: --init CHECKPOINT loads the head too, not only the backbone (a fine-tune)",
    )
    ap.add_argument(
        "--teacher",
        type=Path,
        default=None,
        help="keypoints: distil a model manifest's keypoint network (e.g. an ensemble) into this one",
    )
    ap.add_argument(
        "--teacher-weight",
        type=float,
        default=0.5,
        help="share of the loss on the teacher's heatmaps (all keypoints); the rest on the labels",
    )
    ap.add_argument(
        "--pipeline-boxes",
        type=Path,
        default=None,
        help="keypoints: boxes the pipeline reads each animal in (python -m hindsight_training.pipeline_boxes); "
        "a share --p-pipeline of the crops is cut around them, and validation reads the dogs in them",
    )
    ap.add_argument("--p-pipeline", type=float, default=0.5, help="share of crops cut around pipeline boxes")
    ap.add_argument(
        "--ema",
        type=float,
        default=0.0,
        help="keep an exponential moving average of the weights with this decay (e.g. 0.998); it is "
        "validated beside the trained weights, picks the best checkpoint and is what gets exported",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-every", type=float, default=15.0, help="minutes between val + ONNX export")
    return ap


def main(argv: list[str] | None = None) -> None:
    """Train (or resume) within a time or step budget, checkpointing and exporting as it goes."""
    args = build_parser().parse_args(argv)
    if args.steps is not None and (args.minutes is not None or args.steps < 1 or args.task == "ensemble"):
        raise SystemExit(
            "error: --steps takes a positive step count and replaces --minutes"
            + ("; --task ensemble has its own step budgets (or give --minutes)" if args.task == "ensemble" else "")
        )
    if args.minutes is None and args.steps is None and args.task != "ensemble":
        args.minutes = DEFAULT_MINUTES  # the ensemble recipe's default is its step budgets
    if args.task in ("both", "ensemble"):
        train_recipe(args)
        return
    kp_task = args.task == "keypoints"
    args.out = args.out or checkpoint_root() / args.task
    args.onnx = args.onnx or args.out / ("dog_keypoints.onnx" if kp_task else "dog_detector.onnx")
    if args.ema and not kp_task:
        raise SystemExit("error: --ema averages keypoint networks (--task keypoints)")
    if not 0.0 <= args.ema < 1.0:
        raise SystemExit(f"error: --ema is a decay in [0, 1), not {args.ema}")
    if args.member is not None and not (kp_task and args.init is not None and args.init.suffix == ".json"):
        raise SystemExit("error: --member picks a member of a shipped keypoint ensemble: give --init MANIFEST")
    pipeline = None
    if args.pipeline_boxes is not None:
        if not kp_task:
            raise SystemExit("error: --pipeline-boxes trains keypoint networks (--task keypoints)")
        from hindsight_training.pipeline_boxes import load_pipeline_boxes

        try:
            pipeline = load_pipeline_boxes(args.pipeline_boxes)
        except (OSError, ValueError) as exc:  # missing, unreadable, not JSON or another format
            raise SystemExit(f"error: --pipeline-boxes: {exc}") from None

    import torch

    from hindsight_training.export import export_detector_onnx, export_keypoints_onnx
    from hindsight_training.network import MOVENET_BACKBONE, DogPoseNet, keypoint_network

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    log = print
    previous: dict[str, Any] | None = None
    net: Any
    if args.init is not None and args.init.suffix == ".json":  # a shipped model: continue training it
        net, previous = shipped_start(args.init, args.task, args.member)
        if kp_task:  # the summary must name the network's own backbone, or export rebuilds another network
            args.backbone = str(previous.get("backbone") or "efficientnet-lite0")
        which = f"member {args.member} of the shipped ensemble" if args.member is not None else "the shipped network"
        log(f"init from {args.init}: {which} ({args.task})", flush=True)
    else:
        if args.skips and args.backbone == MOVENET_BACKBONE:
            raise SystemExit("error: --skips adds skip connections to EfficientNet backbones; MoveNet has its pyramid")
        spec_kp = {"backbone": args.backbone, "skips": args.skips}
        net = keypoint_network(spec_kp, pretrained=True) if kp_task else DogPoseNet(pretrained=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.init is not None and args.init.suffix != ".json":
        start = torch.load(args.init, map_location="cpu", weights_only=False)
        init = start["model"]
        previous = start.get("summary")
        if kp_task and not args.init_head:  # backbone only
            init = {k: v for k, v in init.items() if k.startswith(("stem.", "blocks."))}
        missing, _ = net.load_state_dict(init, strict=False)
        log(f"init from {args.init}: {len(init)} tensors, {len(missing)} left fresh", flush=True)
    teacher: Any = None
    teacher_summary: dict[str, Any] | None = None
    if args.teacher is not None:
        if not kp_task:
            raise SystemExit("error: --teacher distils keypoint networks (--task keypoints)")
        from hindsight_training.recover import recover_network, shipped_training

        teacher = recover_network(args.teacher, "keypoints").eval().to(memory_format=torch.channels_last)
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher_summary = {
            "manifest": args.teacher.name,
            "weight": args.teacher_weight,
            "version": shipped_training(args.teacher, "keypoints").get("version"),
        }
        log(f"teacher: the keypoint network of {args.teacher} (weight {args.teacher_weight})", flush=True)
    score_holdout = 0 if kp_task else args.score_holdout
    if score_holdout and args.init is not None and (previous or {}).get("score_holdout_percent") != score_holdout:
        log("the starting weights saw the score hold-out: the dog score will be fitted on all training images")
        score_holdout = 0
    t_load = time.time()
    p_pipeline = args.p_pipeline if pipeline is not None else 0.0
    data = Data(args.data, score_holdout=score_holdout, pipeline_boxes=pipeline)
    log(
        f"data: {len(data.kp_items)} crops ({data.is_dog.sum()} dogs), {len(data.train)} train images "
        f"({len(data.det_train)} for the detector), "
        f"{len(data.val_dogs)} val dogs, loaded in {time.time() - t_load:.0f}s",
        flush=True,
    )
    net = net.to(memory_format=torch.channels_last)
    # The stride-2/4 stem and first blocks stay at their ImageNet weights: their backward pass is
    # the costliest part of a step on CPU and low-level features transfer well.
    frozen = list(net.stem.parameters()) + list(net.blocks[: args.frozen_blocks].parameters())
    frozen_ids = {id(p) for p in frozen}
    for p in frozen:
        p.requires_grad_(False)
    trainable_bb = [p for p in net.backbone_parameters() if id(p) not in frozen_ids]
    opt = torch.optim.AdamW(
        [
            {"params": net.head_parameters(), "lr": args.lr, "weight_decay": 1e-4},
            {"params": net.backbone_parameters(), "lr": args.lr, "weight_decay": 1e-5},  # frozen: no grads
        ]
    )
    step, elapsed, best = 0, 0.0, -1.0
    history: list[dict[str, Any]] = []
    last_ckpt = args.out / "last.pt"
    ck: dict[str, Any] = {}
    if args.resume and last_ckpt.is_file():
        ck = torch.load(last_ckpt, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, elapsed, best, history = ck["step"], ck["elapsed"], ck["best"], ck.get("history", [])
        log(f"resumed at step {step}, {elapsed / 60:.1f} min", flush=True)
    average: Any = None
    if args.ema > 0:
        import copy

        average = copy.deepcopy(net).eval()
        for p in average.parameters():
            p.requires_grad_(False)
        if "ema" in ck:  # resumed
            average.load_state_dict(ck["ema"])
    budget = math.inf if args.steps else args.minutes * 60.0

    def progress(at_step: int, seconds: float) -> float:
        """Where the run is in its budget, 0..1: by steps with ``--steps``, else by time."""
        return at_step / args.steps if args.steps else seconds / budget

    net.train()
    _freeze_bn(net)

    crop_sizes = [int(v) for v in args.crop_sizes.split(",")]
    zoom_lo, zoom_hi = (float(v) for v in args.det_zoom.split(","))
    det_zoom = (zoom_lo, zoom_hi)
    p_dog_from, p_dog_to = (float(v) for v in (args.p_dog.split(",") * 2)[:2])

    def spec(s: int, prog: float) -> tuple[int, int, float]:
        return s, (crop_sizes[0] if prog < 0.55 else crop_sizes[-1]), p_dog_from + (p_dog_to - p_dog_from) * prog

    # Background producer: batches depend only on (seed, step), so resumes are reproducible.
    q: queue.Queue[Any] = queue.Queue(maxsize=3)
    stop = threading.Event()
    produced = {"step": step}

    def producer() -> None:
        while not stop.is_set():
            s = produced["step"]
            _, size, p_dog = spec(s, progress(s, start_elapsed + (time.time() - t0)))
            kb = None
            if kp_task:
                kb = data.kp_batch(args.seed * 1_000_003 + 2 * s, args.kp_batch, size, p_dog, p_pipeline)
            db = (
                None
                if kp_task or s % args.det_every
                else data.det_batch(args.seed * 1_000_003 + 2 * s + 1, args.det_batch, args.det_size, det_zoom)
            )
            produced["step"] = s + 1
            while not stop.is_set():
                try:
                    q.put((s, size, kb, db), timeout=1.0)
                    break
                except queue.Full:
                    continue

    def summary() -> dict[str, Any]:
        return {
            "task": args.task,
            "steps": step,
            "minutes": round(elapsed / 60, 1),
            "budget": {"steps": args.steps} if args.steps else {"minutes": args.minutes},
            "kp_batch": args.kp_batch,
            "det_batch": args.det_batch,
            "det_size": args.det_size,
            "det_zoom": None if kp_task else list(det_zoom),
            "score_holdout_percent": None if kp_task else score_holdout,
            "backbone": args.backbone if kp_task else "efficientnet-lite0",
            "skips": bool(net.skip_taps) if kp_task else None,
            "crop_sizes": crop_sizes if kp_task else [],
            "p_dog": [p_dog_from, p_dog_to] if kp_task else None,
            "lr": args.lr,
            "hind_weight": args.hind_weight if kp_task else None,
            "pipeline_boxes": (
                {"file": args.pipeline_boxes.name, "share": p_pipeline} if kp_task and pipeline is not None else None
            ),
            "init": str(args.init.name) if args.init else pretrained_source(args.backbone if kp_task else None),
            "init_head": bool(args.init_head) if kp_task else None,
            "teacher": teacher_summary,
            "init_training": previous,  # lineage: how the starting weights were trained
            "det_every": args.det_every,
            "frozen_blocks": args.frozen_blocks,
            "seed": args.seed,
            "data": "Animal-Pose train split (dog, cat, horse, sheep, cow)",
            "ema_decay": args.ema or None,
            "recent_loss": history[-1] if history else None,
        }

    def save(path: Path, metrics: dict[str, Any] | None = None, weights: Any = None) -> None:
        """A checkpoint; ``weights``: the network stored as ``model`` (default the trained one)."""
        tmp = path.with_name(path.name + ".tmp")
        extra = {"ema": average.state_dict()} if average is not None else {}
        torch.save(
            {
                "model": (weights if weights is not None else net).state_dict(),
                **extra,
                "optim": opt.state_dict(),
                "step": step,
                "elapsed": elapsed,
                "best": best,
                "history": history,
                "summary": summary(),
                "metrics": metrics or {},
            },
            tmp,
        )
        tmp.replace(path)

    def evaluate_and_export() -> None:
        nonlocal best
        t = time.time()
        if kp_task:
            metrics: dict[str, Any] = {}
            # With --ema the average is validated after the trained weights and its figures decide; the
            # plain keys always describe the weights that are exported (the trained ones are "trained_").
            runs = [("", net)] if average is None else [("trained_", net), ("", average)]
            for prefix, candidate in runs:
                m = val_gt_box(candidate, data, size=crop_sizes[-1])
                score = m["hind_pck10"] or 0.0
                log(
                    f"[val] step {step} {'EMA' if candidate is average else 'trained'} hind PCK@0.1 {score:.3f} "
                    f"all {m['all_pck10']:.3f} ({time.time() - t:.0f}s)",
                    flush=True,
                )
                metrics |= {f"{prefix}val_gt_box_hind_pck10": score, f"{prefix}val_gt_box_all_pck10": m["all_pck10"]}
                if pipeline is not None:  # the best checkpoint is the best in the boxes the pipeline reads
                    mp = val_gt_box(candidate, data, size=crop_sizes[-1], pipeline=True)
                    score = mp["hind_pck10"] or 0.0
                    log(f"[val] in pipeline boxes: hind PCK@0.1 {score:.3f} all {mp['all_pck10']:.3f}", flush=True)
                    metrics |= {
                        f"{prefix}val_pipeline_box_hind_pck10": score,
                        f"{prefix}val_pipeline_box_all_pck10": mp["all_pck10"],
                    }
            # the exported weights' figure decides, in the boxes the pipeline reads when they are given
            score = metrics["val_pipeline_box_hind_pck10" if pipeline is not None else "val_gt_box_hind_pck10"]
        else:
            m = val_detection(net, data, args.det_size)
            score = m["found"]
            log(f"[val] step {step} dogs found {score:.3f} of {m['n_images']} ({time.time() - t:.0f}s)", flush=True)
            metrics = {"val_found_iou50": score}
        history.append({"step": step, "minutes": round(elapsed / 60, 1), **metrics})
        if score > best:
            best = score
            chosen = average if average is not None else net
            save(args.out / "best.pt", metrics, weights=chosen)
            (export_keypoints_onnx if kp_task else export_detector_onnx)(chosen, args.onnx, summary(), metrics)
            log(f"[export] {args.onnx}", flush=True)
        (args.out / "history.json").write_text(json.dumps(history, indent=1))

    t0 = time.time()
    start_elapsed, start_step = elapsed, step
    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    last_save, last_eval = time.time(), time.time()
    run_loss = {"kp": 0.0, "det": 0.0, "n": 0}
    channel_weight = torch.from_numpy(keypoint_loss_weights(args.hind_weight))
    # Under CPU contention two intra-op threads can be several times slower than one (threads
    # wait at barriers for a descheduled sibling), so the thread count adapts: every 40 steps the
    # other setting is tried for 6 steps and the faster recent mean is kept.
    threads_cur = args.threads
    timing: dict[int, list[float]] = {1: [], args.threads: []}
    explore_left = 0
    while progress(step, elapsed) < 1.0:
        s, size, kb, db = q.get()
        t_step = time.time()
        if args.threads > 1 and step % 40 == 0 and step > 0:
            explore_left = 6
            threads_cur = 1 if threads_cur == args.threads else args.threads
        elif explore_left == 0 and all(len(v) >= 4 for v in timing.values()):
            threads_cur = min(timing, key=lambda t: float(np.mean(timing[t][-6:])))
        torch.set_num_threads(threads_cur)
        elapsed = start_elapsed + (time.time() - t0)
        head_mult, bb_mult = progress_schedule(progress(step, elapsed), step)
        opt.param_groups[0]["lr"] = args.lr * head_mult
        opt.param_groups[1]["lr"] = args.lr * bb_mult
        for p in trainable_bb:
            p.requires_grad_(bb_mult > 0)
        kp_loss = torch.zeros(())
        if kb is not None:
            crops, hms, ws = (torch.from_numpy(a) for a in kb)
            ws = ws * channel_weight
            x = crops.permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
            kp = net(x)
            soft = None
            if teacher is not None:
                with torch.no_grad():
                    soft = teacher(x).float()
            kp_loss = keypoint_loss(kp.float(), hms, ws, channel_weight, soft, args.teacher_weight)
        det_loss = torch.zeros(())
        if db is not None:
            canv, heat, reg, mask = (torch.from_numpy(a) for a in db)
            xd = canv.permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)
            det, _ = net(xd)
            det = det.float()
            npos = mask.sum().clamp(min=1.0)
            det_loss = focal_loss(det[:, :1], heat)
            det_loss = det_loss + ((det[:, 1:] - reg).abs() * mask).sum() / npos
        loss = kp_loss + det_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if average is not None:
            ema_update(average, net, ema_decay(args.ema, step))
        step += 1
        timing[threads_cur] = (timing[threads_cur] + [time.time() - t_step])[-6:]
        explore_left = max(0, explore_left - 1)
        run_loss["kp"] += kp_loss.item()
        run_loss["det"] += det_loss.item() * args.det_every
        run_loss["n"] += 1
        if step % 25 == 0:
            n = run_loss["n"]
            log(
                f"step {step} {elapsed / 60:.1f}min crop {size} lr {opt.param_groups[0]['lr']:.2e}/"
                f"{opt.param_groups[1]['lr']:.2e} kp {run_loss['kp'] / n:.4f} det {run_loss['det'] / n:.3f} "
                f"({(time.time() - t0) / max(step - start_step, 1):.2f}s/step, threads {threads_cur})",
                flush=True,
            )
            history.append(
                {
                    "step": step,
                    "minutes": round(elapsed / 60, 1),
                    "kp_loss": run_loss["kp"] / n,
                    "det_loss": run_loss["det"] / n,
                }
            )
            run_loss = {"kp": 0.0, "det": 0.0, "n": 0}
        if time.time() - last_save > 300:
            save(last_ckpt)
            last_save = time.time()
        if time.time() - last_eval > args.eval_every * 60:
            evaluate_and_export()
            last_eval = time.time()
    stop.set()
    save(last_ckpt)
    evaluate_and_export()
    log(f"done: {step} steps, {elapsed / 60:.1f} min, best validation {best:.3f}", flush=True)


if __name__ == "__main__":
    main()
